"""`lfagent report`: one self-contained HTML page per run (inline CSS, plots as SVG data URIs, no URLs).

`build_report` gathers the figures (pure once votes are given), `render_html` writes the markup,
`write_report` does the I/O. A tiny inline script marks the <body> with how many images decoded, so a
headless browser test can check the page really renders.
"""
from __future__ import annotations

import base64
import re
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from lfagent.scoring.table import format_cell
from lfagent.report import plots
from lfagent.report.card import CardFacts, card_facts, unseeded_warning
from lfagent.rundir.read import RunArtifacts, load_run
from lfagent.report.summary import pairwise_disagreement
from lfagent.report.votes import KeptVotes, kept_lf_votes


class Figure(BaseModel):
    key: str
    title: str
    caption: str
    svg: str | None  # None: the figure could not be drawn; caption says why


class Report(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    facts: CardFacts
    figures: list[Figure]
    dropped_reasons: dict[str, int]
    notes: list[str]
    llm: dict | None


REASON_GROUPS = [("no seed votes", "no seed votes"), ("only ", "too few seed votes"),
                 ("seed accuracy", "does not beat chance on seeds"), ("redundant", "redundant with a kept LF"),
                 ("adds nothing", "adds nothing to the label model"), ("sandbox", "failed in the sandbox")]


def reason_group(reason: str | None) -> str:
    text = (reason or "not selected").strip()
    for prefix, group in REASON_GROUPS:
        if text.startswith(prefix):
            return group
    return re.sub(r"\s+", " ", text.split(":")[0])[:60]


def build_report(run: RunArtifacts, votes: KeptVotes) -> Report:
    facts = card_facts(run)
    notes = [f"Warning: {unseeded_warning(facts.unseeded)}"] if facts.unseeded else []
    notes += [votes.note] if votes.note else []
    notes += [f"LF {name} left out of the disagreement heatmap: {why}" for name, why in votes.skipped.items()]
    figures = [_reliability_figure(facts), _scatter_figure(run), _distribution_figure(facts),
               _disagreement_figure(votes)]
    dropped = Counter(reason_group(c.get("reason")) for c in run.candidates if not c.get("kept"))
    return Report(facts=facts, figures=figures, dropped_reasons=dict(dropped.most_common()), notes=notes,
                  llm=run.metrics.get("llm") or None)


def _reliability_figure(facts: CardFacts) -> Figure:
    caption = "Each seed's probability comes from a model fitted without it (cross-fitted), then calibrated."
    if facts.reliability is None or not facts.reliability.n:
        return Figure(key="reliability", title="Reliability diagram", caption="No heldout.jsonl: " + caption, svg=None)
    return Figure(key="reliability", title="Reliability diagram",
                  caption=f"{facts.reliability.what}. {caption}", svg=plots.reliability_svg(facts.reliability))


def _scatter_figure(run: RunArtifacts) -> Figure:
    rows = [c for c in run.candidates if c.get("stats")]
    title = "LF coverage against seed accuracy"
    if not rows:
        return Figure(key="lf-scatter", title=title, caption="No candidate statistics (candidates.json).", svg=None)
    svg = plots.lf_scatter_svg([c["stats"].get("coverage", 0.0) for c in rows],
                               [c["stats"].get("seed_accuracy") for c in rows], [bool(c.get("kept")) for c in rows])
    return Figure(key="lf-scatter", title=title, svg=svg,
                  caption=f"{len(rows)} candidate LFs; candidates with no seed vote have no accuracy and are not drawn.")


def _distribution_figure(facts: CardFacts) -> Figure:
    return Figure(key="class-distribution", title="Class distribution of silver labels",
                  caption="Predicted class per unlabeled record" + (" (each label counted)" if facts.multi_label else "."),
                  svg=plots.class_distribution_svg(facts.class_distribution))


def _disagreement_figure(votes: KeptVotes) -> Figure:
    title = "Disagreement between kept LFs"
    if votes.L.shape[1] == 0:
        return Figure(key="disagreement", title=title, svg=None,
                      caption=votes.note or "No kept LF could be re-applied to the unlabeled records.")
    rate, both = pairwise_disagreement(votes.L)
    met = int((both[np.triu_indices(len(both), 1)] > 0).sum())
    return Figure(key="disagreement", title=title, svg=plots.disagreement_svg(rate, votes.names),
                  caption=f"Conflict rate of each pair of kept LFs on the unlabeled records: of the records "
                          f"where either LF votes, the share where both vote and disagree. {met} LF pairs vote "
                          f"together on some record (grey: never, or the diagonal).")


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;margin:0;background:#f7f8fa}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.sub{color:#4a5568;margin:0 0 18px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;min-width:150px}
.card .v{font-size:20px;font-weight:600}.card .k{color:#4a5568;font-size:12px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}
figure{background:#fff;border:1px solid #e2e8f0;border-radius:8px;margin:0;padding:12px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:#4a5568;font-size:12px;margin-top:6px}.missing{color:#9b2c2c;padding:30px 0;text-align:center}
table{border-collapse:collapse;background:#fff;font-size:12.5px;width:100%}
th,td{border:1px solid #e2e8f0;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#edf2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.notes{color:#744210;background:#fffff0;border:1px solid #faf089;border-radius:6px;padding:8px 12px}
code{font-size:12px}
"""

CHECK_IMAGES = """
(function(){function mark(){var imgs=document.images,ok=0;for(var i=0;i<imgs.length;i++){
if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}document.body.setAttribute('data-images-ok',ok+'/'+imgs.length);}
window.addEventListener('load',mark);})();
"""


def _fmt(value, digits: int = 3) -> str:
    return escape(format_cell(value, digits))


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric_cards(report: Report) -> str:
    f, m = report.facts, report.facts.cross_fitted
    items = [("accuracy (cross-fitted)" if not f.multi_label else "micro F1 (cross-fitted)",
              _fmt(m.get("seed_accuracy")), f"95% [{_fmt(m.get('seed_accuracy_low'))}, {_fmt(m.get('seed_accuracy_high'))}]"),
             ("macro F1", _fmt(m.get("seed_macro_f1")), f"{m.get('n_seeds', '?')} seeds, {m.get('folds', '?')} folds"),
             ("ECE after calibration", _fmt(m.get("seed_ece")), f"before: {_fmt(m.get('seed_ece_uncalibrated'))}"),
             ("coverage", _fmt(f.coverage), "unlabeled records with an LF vote"),
             ("LFs kept", _fmt(m.get("n_kept", len(f.lfs))), f"of {m.get('n_candidates', '?')} candidates"),
             ("silver records", _fmt(f.counts.get("records")), f"label model: {escape(f.label_model)}")]
    if f.test:
        items.append(("held-out test", _fmt(f.test.get("accuracy") or f.test.get("micro_f1")),
                      escape(", ".join(f"{k} {_fmt(v)}" for k, v in f.test.items() if isinstance(v, (int, float)))[:90])))
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div><div class="k">{sub}</div></div>'
        for k, v, sub in items) + "</div>"


def _figure_html(fig: Figure) -> str:
    if fig.svg is None:
        inner = '<div class="missing">not drawn</div>'
    else:
        data = base64.b64encode(fig.svg.encode("utf-8")).decode("ascii")
        inner = f'<img alt="{escape(fig.title)}" src="data:image/svg+xml;base64,{data}">'
    return (f'<figure id="fig-{fig.key}" data-figure="{fig.key}"><h3>{escape(fig.title)}</h3>{inner}'
            f"<figcaption>{escape(fig.caption)}</figcaption></figure>")


def _lf_table(facts: CardFacts) -> str:
    rows = [[f"<code>{escape(r.name)}</code>", escape(r.kind), escape(r.source), escape(r.label), escape(r.summary),
             _fmt(r.coverage), _fmt(r.overlap), _fmt(r.conflict), _fmt(r.seed_votes), _fmt(r.seed_accuracy),
             f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"] for r in facts.lfs]
    return _table(["name", "kind", "source", "votes for", "rule", "coverage", "overlap", "conflict", "seed votes",
                   "seed acc.", "95% CI"], rows, numeric={5, 6, 7, 8, 9})


def _provenance(report: Report) -> str:
    f = report.facts
    rows = [["task", escape(f"{f.task_name}: {f.task_description}".rstrip(": "))],
            ["classes", escape(", ".join(n for n, _ in f.classes)) + (" (multi-label)" if f.multi_label else "")],
            ["LFs by source", escape(", ".join(f"{s}: {n}" for s, n in f.lfs_by_source.items()) or "none")],
            ["label model", escape(f.label_model)], ["run id", f"<code>{escape(f.run_id)}</code>"],
            ["LF-set hash", f"<code>{escape(f.lf_set_hash)}</code>"], ["date", escape(f.created or "-")],
            ["lfagent version", escape(f.version)]]
    if report.llm:
        rows.append(["LLM use", escape(", ".join(f"{k} {v}" for k, v in report.llm.items()))])
    return "<table><tbody>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>"


def render_html(report: Report) -> str:
    f = report.facts
    dropped = _table(["why dropped", "candidates"], [[escape(k), v] for k, v in report.dropped_reasons.items()],
                     numeric={1}) if report.dropped_reasons else "<p>No candidate was dropped.</p>"
    notes = ("<div class=\"notes\"><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul></div>"
             if report.notes else "")
    body = [f"<h1>lfagent report: {escape(f.task_name)}</h1>",
            f'<p class="sub">run <code>{escape(f.run_id)}</code> · {escape(f.created or "")} · lfagent {escape(f.version)}</p>',
            "<h2>Metrics</h2>", _metric_cards(report),
            "<h2>Plots</h2>", '<div class="figs">' + "".join(_figure_html(x) for x in report.figures) + "</div>", notes,
            f"<h2>Kept labeling functions ({len(f.lfs)})</h2>", _lf_table(f),
            "<h2>Dropped candidates</h2>", dropped, "<h2>How the data was made</h2>", _provenance(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>lfagent report: "
            f"{escape(f.task_name)}</title><style>{CSS}</style></head>\n<body><main>\n" + "\n".join(body) +
            f"\n</main><script>{CHECK_IMAGES}</script></body></html>\n")


def write_report(run_dir: str | Path, out: str | Path | None = None, *, embeddings: bool = True,
                 sandbox: bool = True) -> Path:
    """Write RUN_DIR/report.html (or `out`); returns its path."""
    run = load_run(run_dir)
    votes = kept_lf_votes(run, embeddings=embeddings, sandbox=sandbox)
    path = Path(out) if out else Path(run_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(build_report(run, votes)), encoding="utf-8")
    return path
