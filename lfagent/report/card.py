"""The dataset card (after "The Dataset Nutrition Label"): what the silver labels are, how good, how made.

`card_facts` gathers the figures from a run (plus counts from `lfagent generate` when given),
`render_card` turns them into Markdown (pure), and the `write_*` functions put the file on disk.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from lfagent.scoring.table import format_cell
from lfagent.about import lfagent_version
from lfagent.rundir.read import RunArtifacts, load_run, store_meta
from lfagent.report.summary import (Reliability, class_distribution as silver_class_distribution,
                                    coverage_fraction, lfs_by_source, reliability)

CAVEATS = [
    "Labels are machine-made (weak supervision), not human gold: expect errors at about the rate the "
    "accuracy interval above suggests, and more on records unlike the seeds.",
    "The accuracy estimate comes from about {n_seeds} seed labels; its interval is wide when seeds are few, "
    "and it assumes the seeds are a fair sample of the data being labeled.",
    "Probabilities are calibrated on the seeds; on data that drifts from them, calibration may not hold.",
    "Records no labeling function covers get fallback probabilities (an embedding classifier or the class "
    "prior); filter on `covered` when you need only LF-backed labels.",
    "Labeling functions can encode the biases of the keywords, seeds and LLM prompts that made them.",
]
INTENDED_USE = ("Training or bootstrapping a classifier for the task described above, ideally weighting or filtering "
                "records by their probabilities; triage for human labeling (see `lfagent audit`). Not for "
                "evaluating models: use held-out human labels for that.")


class LFRow(BaseModel):
    name: str
    kind: str
    source: str
    label: str
    summary: str
    coverage: float | None
    overlap: float | None
    conflict: float | None
    seed_votes: int | None
    seed_accuracy: float | None
    ci_low: float | None
    ci_high: float | None


class CardFacts(BaseModel):
    """Every figure the card shows; built from a run, rendered by `render_card`."""

    title: str
    task_name: str
    task_description: str
    classes: list[tuple[str, str]]
    multi_label: bool
    counts: dict[str, int]
    class_distribution: dict[str, int]
    coverage: float | None
    lfs: list[LFRow]
    lfs_by_source: dict[str, int]
    cross_fitted: dict
    test: dict | None
    reliability: Reliability | None
    run_id: str
    lf_set_hash: str
    label_model: str
    created: str | None
    version: str
    n_seeds: int
    guideline: str | None = None
    llm_spent: dict | None = None  # what the run paid its LLM (calls, tokens, cost), from metrics.json
    unseeded: list[str] = []  # classes no seed carries (run.sqlite meta `unseeded_classes`)


def lf_rows(run: RunArtifacts) -> list[LFRow]:
    stats = {entry["lf"]["name"]: entry.get("stats") or {} for entry in run.lfs}
    rows = []
    for lf in run.model.lfs:
        s = stats.get(lf.name, {})
        rows.append(LFRow(name=lf.name, kind=lf.kind, source=lf.provenance.source, label=lf.label or "any",
                          summary=lf.summary(), coverage=s.get("coverage"), overlap=s.get("overlap"),
                          conflict=s.get("conflict"), seed_votes=s.get("seed_votes"),
                          seed_accuracy=s.get("seed_accuracy"), ci_low=s.get("ci_low"), ci_high=s.get("ci_high")))
    return rows


def card_facts(run: RunArtifacts, *, counts: int | dict[str, int] | None = None,
               class_distribution: dict[str, int] | None = None, coverage: float | None = None,
               title: str | None = None) -> CardFacts:
    """Figures for the card. `counts` (an int is the number of records), `class_distribution` and
    `coverage` describe the labeled data when it is not the run's own silver.jsonl (e.g. `generate`)."""
    names, multi = run.class_names, run.multi_label
    if counts is None:
        n_covered = int(run.silver_covered().sum())
        counts = {"records": len(run.silver), "covered by an LF": n_covered,
                  "fallback (no LF voted)": len(run.silver) - n_covered}
    elif isinstance(counts, int):
        counts = {"records": counts}
    if class_distribution is None:
        class_distribution = silver_class_distribution(run.silver, names, multi)
    if coverage is None and run.silver:
        coverage = coverage_fraction(run.silver)
    metrics = run.cross_fitted
    task = run.model.task
    lf_dicts = [lf.model_dump(mode="json") for lf in run.model.lfs]
    return CardFacts(
        title=title or f"{task.get('name', 'task')}: silver labels",
        task_name=str(task.get("name", "")), task_description=str(task.get("description", "")),
        classes=[(c["name"], c.get("description", "")) for c in task.get("classes", [])],
        multi_label=multi, counts=dict(counts), class_distribution=dict(class_distribution), coverage=coverage,
        lfs=lf_rows(run), lfs_by_source=lfs_by_source(lf_dicts), cross_fitted=metrics,
        test=run.metrics.get("test") or None,
        reliability=reliability(run.heldout_probs(), run.heldout_truth(), multi_label=multi) if run.heldout else None,
        run_id=run.model.run_id, lf_set_hash=run.model.lf_set_hash,
        label_model=str(metrics.get("label_model") or ("none" if run.model.labeler.label_model is None else "fitted")),
        created=run.created, version=lfagent_version(), n_seeds=int(metrics.get("n_seeds") or len(run.heldout)),
        guideline=run.guideline, llm_spent=run.metrics.get("llm") or None,
        unseeded=list(store_meta(run.path, "unseeded_classes") or []))




def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def unseeded_warning(classes: list[str]) -> str:
    """What a reader of the labels must know about classes no seed carries (card and HTML report)."""
    one = len(classes) == 1
    return (f"the seeds have no example of {', '.join(classes)}. {'It is' if one else 'They are'} labelled only "
            "where an LF votes " + ("it" if one else "them") + " (the user's, or an LLM's), through the LLM's record "
            "labels and the label model, from a small prior; no seed measures how well, and the seed figures "
            "say nothing about " + ("it." if one else "them."))


def _counts_section(f: CardFacts) -> list[str]:
    out = ["## Counts", ""] + _table(["what", "records"], [[k, v] for k, v in f.counts.items()])
    total = sum(f.class_distribution.values())
    unit = "records carrying the label" if f.multi_label else "records"
    out += ["## Class distribution", ""]
    out += _table(["class", unit, "share"],
                  [[name, n, f"{n / total:.1%}" if total else "-"] for name, n in f.class_distribution.items()])
    if f.unseeded:
        out += [f"**Warning:** {unseeded_warning(f.unseeded)}", ""]
    out += ["## Coverage", ""]
    if f.coverage is None:
        out += ["Coverage unknown (no silver records).", ""]
    else:
        out += [f"{f.coverage:.1%} of records have at least one labeling-function vote; the rest get fallback "
                "probabilities (embedding classifier or class prior).", ""]
    return out


def _lf_section(f: CardFacts) -> list[str]:
    out = ["## Labeling functions", "",
           f"{len(f.lfs)} kept. Coverage, overlap and conflict are fractions of unlabeled records; seed accuracy "
           "is on the seeds used for selection (optimistic), with its 95% Wilson interval.", ""]
    rows = [[r.name, r.kind, r.source, r.label, r.summary, format_cell(r.coverage), format_cell(r.overlap), format_cell(r.conflict),
             format_cell(r.seed_votes), format_cell(r.seed_accuracy), f"[{format_cell(r.ci_low)}, {format_cell(r.ci_high)}]"] for r in f.lfs]
    return out + _table(["name", "kind", "source", "votes for", "rule", "coverage", "overlap", "conflict",
                         "seed votes", "seed acc.", "95% CI"], rows)


def _quality_section(f: CardFacts) -> list[str]:
    m = f.cross_fitted
    measure = "micro F1" if f.multi_label else "accuracy"
    out = ["## Accuracy estimate", ""]
    if m:
        out += [f"Cross-fitted {measure} on {m.get('n_seeds', '?')} seeds ({m.get('folds', '?')} folds; each "
                f"seed predicted by a model that never saw it): **{format_cell(m.get('seed_accuracy'))}** "
                f"(95% interval {format_cell(m.get('seed_accuracy_low'))} to {format_cell(m.get('seed_accuracy_high'))}); "
                f"macro F1 {format_cell(m.get('seed_macro_f1'))}.", ""]
    else:
        out += ["No cross-fitted figures (metrics.json missing).", ""]
    if f.test:
        out += ["Held-out test set: " + ", ".join(f"{k} {format_cell(v)}" for k, v in f.test.items()
                                                   if isinstance(v, (int, float))), ""]
    out += ["## Calibration", ""]
    if m:
        out += [f"Expected calibration error on cross-fitted seeds: before calibration "
                f"{format_cell(m.get('seed_ece_uncalibrated'))}, after **{format_cell(m.get('seed_ece'))}**.", ""]
    if f.reliability:
        out += [f"Reliability bins ({f.reliability.what}; {f.reliability.n} predictions, ECE "
                f"{f.reliability.ece:.3f}):", ""]
        out += _table(["bin", "predictions", "mean confidence", "observed"],
                      [[f"{b.lower:.1f}-{b.upper:.1f}", b.count, format_cell(b.mean_confidence), format_cell(b.accuracy)]
                       for b in f.reliability.bins if b.count])
    return out


def _provenance_section(f: CardFacts) -> list[str]:
    classes = "; ".join(f"{n}" + (f" ({d})" if d else "") for n, d in f.classes)
    sources = ", ".join(f"{s}: {n}" for s, n in f.lfs_by_source.items()) or "none"
    rows = [["task", f"{f.task_name}: {f.task_description}".rstrip(": ")],
            ["classes", classes + (" (multi-label)" if f.multi_label else "")],
            ["seed labels", f.n_seeds], ["labeling functions by source", sources],
            ["label model", f.label_model], ["run id", f.run_id], ["LF-set hash", f.lf_set_hash],
            ["date", f.created or "-"], ["lfagent version", f.version]]
    if f.llm_spent:
        spent = f.llm_spent
        tokens = spent.get("prompt_tokens", 0) + spent.get("completion_tokens", 0)
        rows.append(["LLM spent", f"{spent.get('calls', 0)} calls, {tokens} tokens, ${spent.get('cost', 0.0):.4f}"])
    out = ["## How the data was made", ""] + _table(["", ""], rows)
    if f.guideline:
        out += ["The labeling guideline the LLM wrote from the seeds, reused in its later prompts (the lines kept):",
                "", *[f"> {line}" for line in f.guideline.splitlines()], ""]
    out += ["## Intended use", "", INTENDED_USE, "", "## Caveats", ""]
    return out + [f"- {c.format(n_seeds=f.n_seeds)}" for c in CAVEATS] + [""]


def render_card(facts: CardFacts) -> str:
    """The card as Markdown."""
    head = [f"# Dataset card: {facts.title}", "",
            "_Silver labels made by lfagent: labeling functions, a label model and calibration; "
            "figures after \"The Dataset Nutrition Label\"._", ""]
    lines = head + _counts_section(facts) + _quality_section(facts) + _lf_section(facts) + _provenance_section(facts)
    return "\n".join(lines).rstrip() + "\n"


def card_path_for(out_path: str | Path) -> Path:
    """OUT.parquet -> OUT.card.md; a folder of shards gets FOLDER/CARD.md."""
    out = Path(out_path)
    return out / "CARD.md" if out.is_dir() else out.with_name(f"{out.stem}.card.md")


def write_dataset_card(run_dir: str | Path, out_path: str | Path, *, counts: int | dict[str, int] | None = None,
                       class_distribution: dict[str, int] | None = None, coverage: float | None = None) -> Path:
    """Write the card beside `lfagent generate`'s output (OUT.card.md); returns its path.

    Figures not given are taken from the run's silver.jsonl."""
    run = load_run(run_dir)
    facts = card_facts(run, counts=counts, class_distribution=class_distribution, coverage=coverage,
                       title=f"{run.model.task.get('name', 'task')}: {Path(out_path).name}")
    path = card_path_for(out_path)
    path.write_text(render_card(facts), encoding="utf-8")
    return path


def write_run_card(run_dir: str | Path) -> Path:
    """Write RUN_DIR/CARD.md from the run's silver.jsonl; returns its path."""
    run = load_run(run_dir)
    path = Path(run_dir) / "CARD.md"
    path.write_text(render_card(card_facts(run)), encoding="utf-8")
    return path
