"""Dataset card and HTML report, on a small known run directory (tests/run_dir_fixture.py)."""
from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lfagent import cli
from lfagent.errors import InputError
from lfagent.report import load_run, write_dataset_card, write_report, write_run_card
from lfagent.report.card import card_path_for
from lfagent.report.summary import class_distribution, pairwise_disagreement, record_disagreement, reliability
from run_dir_fixture import build_run_dir

CARD_SECTIONS = ["## Counts", "## Class distribution", "## Coverage", "## Accuracy estimate", "## Calibration",
                 "## Labeling functions", "## How the data was made", "## Intended use", "## Caveats"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return build_run_dir(tmp_path_factory.mktemp("fixture"))


@pytest.fixture(scope="module")
def report_html(run_dir) -> str:
    path = write_report(run_dir, run_dir / "report.html", embeddings=False, sandbox=False)
    return path.read_text(encoding="utf-8")


def silver_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "silver.jsonl").read_text().splitlines()]


def test_run_card_has_every_section_with_the_runs_numbers(run_dir):
    card = write_run_card(run_dir).read_text(encoding="utf-8")
    positions = [card.index(section) for section in CARD_SECTIONS]
    assert positions == sorted(positions)
    rows = silver_rows(run_dir)
    covered = sum(r["covered"] for r in rows)
    assert f"| records | {len(rows)} |" in card
    assert f"| covered by an LF | {covered} |" in card
    assert f"| fallback (no LF voted) | {len(rows) - covered} |" in card
    for name in ("HAM", "SPAM"):
        n = sum(r["label"] == name for r in rows)
        assert f"| {name} | {n} | {n / len(rows):.1%} |" in card
    assert f"{covered / len(rows):.1%} of records have at least one" in card
    assert "**0.875** (95% interval 0.739 to 0.945)" in card
    assert "before calibration 0.142, after **0.061**" in card
    model = json.loads((run_dir / "model.json").read_text())
    assert f"| LF-set hash | {model['lf_set_hash']} |" in card
    assert "| run id | fixture0run1 |" in card
    assert "| date | 2023-11-14 22:13 UTC |" in card  # from run.sqlite, not the file's mtime
    assert "| seed labels | 40 |" in card
    assert "| label model | dawid_skene |" in card
    assert "mined:ngram: 1" in card and "llm:code: 1" in card
    assert "labeling guideline" not in card  # this run has none


def test_run_card_quotes_the_guideline_the_llm_prompts_reused(tmp_path):
    import sqlite3

    run_dir = build_run_dir(tmp_path)
    db = sqlite3.connect(str(run_dir / "run.sqlite"))
    db.execute("INSERT INTO meta VALUES ('guideline', ?)", (json.dumps("- SPAM asks to subscribe.\n- HAM: the song."),))
    db.commit()
    db.close()
    card = write_run_card(run_dir).read_text(encoding="utf-8")
    made = card[card.index("## How the data was made"):card.index("## Intended use")]
    assert "> - SPAM asks to subscribe.\n> - HAM: the song." in made
    for name in ("kw_channel", "rx_http", "kw_song", "emb_spam", "code_caps"):
        assert f"| {name} |" in card
    assert "| lfagent version | " in card


def test_card_reliability_bins_match_the_heldout_probabilities(run_dir):
    run = load_run(run_dir)
    rel = reliability(run.heldout_probs(), run.heldout_truth())
    assert sum(b.count for b in rel.bins) == 40
    card = write_run_card(run_dir).read_text(encoding="utf-8")
    assert f"ECE {rel.ece:.3f}" in card
    top_bin = rel.bins[-1]
    assert f"| 0.9-1.0 | {top_bin.count} | {top_bin.mean_confidence:.3f} | {top_bin.accuracy:.3f} |" in card


def test_reliability_ece_by_hand():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.65, 0.35], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    rel = reliability(probs, y, n_bins=10)
    # bins 0.9-1.0: conf (0.95+0.9)/2 = 0.925, acc 0.5; 0.6-0.7: conf 0.625, acc 1.0
    assert rel.ece == pytest.approx(0.5 * abs(0.5 - 0.925) + 0.5 * abs(1.0 - 0.625))
    multi = reliability(np.array([[0.9, 0.2]]), np.array([[1, 0]]), multi_label=True)
    assert multi.n == 2 and multi.ece == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)


def test_dataset_card_beside_generated_output_uses_given_figures(run_dir, tmp_path):
    out = tmp_path / "big.parquet"
    path = write_dataset_card(run_dir, out, counts=1000, class_distribution={"HAM": 700, "SPAM": 300},
                              coverage=0.8)
    assert path == tmp_path / "big.card.md" == card_path_for(out)
    card = path.read_text(encoding="utf-8")
    assert "| records | 1000 |" in card
    assert "| HAM | 700 | 70.0% |" in card and "| SPAM | 300 | 30.0% |" in card
    assert "80.0% of records have at least one" in card
    assert "# Dataset card: fixture-spam: big.parquet" in card
    shards = tmp_path / "shards"
    shards.mkdir()
    assert write_dataset_card(run_dir, shards) == shards / "CARD.md"


def test_multilabel_class_distribution_counts_each_label():
    rows = [{"labels": ["A", "B"]}, {"labels": ["B"]}, {"labels": []}]
    assert class_distribution(rows, ["A", "B", "C"], True) == {"A": 1, "B": 2, "C": 0}


def test_pairwise_and_record_disagreement_by_hand():
    L = np.array([[0, 1, -1], [0, 0, 1], [-1, 1, 1], [-1, -1, -1]])
    rate, both = pairwise_disagreement(L)
    # LFs 0 and 1: either votes on rows 0, 1, 2; both on 0 (differ) and 1 (agree)
    assert both[0, 1] == 2 and rate[0, 1] == pytest.approx(1 / 3)
    assert both[0, 2] == 1 and rate[0, 2] == pytest.approx(1 / 3)  # either: rows 0, 1, 2; differ on row 1
    assert both[1, 2] == 2 and rate[1, 2] == pytest.approx(1 / 3)  # meet on rows 1 (differ) and 2 (agree)
    assert pairwise_disagreement(np.array([[0, 0], [0, -1]]))[0][0, 1] == 0.0  # meet and agree
    assert np.allclose(rate, rate.T, equal_nan=True)
    assert np.isnan(pairwise_disagreement(np.array([[0, -1], [-1, 1]]))[0][0, 1])  # never meet
    assert np.allclose(record_disagreement(L, 2), [0.5, 1 / 3, 0.0, 0.0])


def _external_refs(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html, flags=re.I)


def test_report_is_self_contained_with_four_plots(report_html):
    assert _external_refs(report_html) == []
    assert "<link" not in report_html and "@import" not in report_html
    figures = re.findall(r'data-figure="([^"]+)"', report_html)
    assert figures == ["reliability", "lf-scatter", "class-distribution", "disagreement"]
    images = re.findall(r'<img alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', report_html)
    assert len(images) == 4
    for data in images:
        svg = ET.fromstring(base64.b64decode(data))  # each plot is a well-formed SVG document
        assert svg.tag.endswith("svg")
        assert not _external_refs(base64.b64decode(data).decode())
    for heading in ("Metrics", "Plots", "Kept labeling functions (5)", "Dropped candidates", "How the data was made"):
        assert f"<h2>{heading}</h2>" in report_html


def test_report_tables_and_notes(report_html):
    for name in ("kw_channel", "rx_http", "kw_song", "emb_spam", "code_caps"):
        assert f"<code>{name}</code>" in report_html
    assert "0.875" in report_html and "[0.739, 0.945]" in report_html
    assert "no seed votes" in report_html and "redundant with a kept LF" in report_html
    # embeddings and sandbox were off: those LFs are named as left out of the heatmap
    assert "LF emb_spam left out of the disagreement heatmap: embeddings turned off" in report_html
    assert "LF code_caps left out of the disagreement heatmap: sandbox turned off" in report_html
    assert "2 LF pairs vote together" in report_html  # channel+http, channel+song; http never meets song


def test_report_without_unlabeled_file_still_renders_with_a_note(tmp_path):
    run_dir = build_run_dir(tmp_path)
    (tmp_path / "data" / "unlabeled.jsonl").unlink()
    html = write_report(run_dir, embeddings=False, sandbox=False).read_text(encoding="utf-8")
    assert "unlabeled records not readable" in html
    assert html.count("data:image/svg+xml") == 3 and 'class="missing"' in html


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "run directory not found"),
    (lambda root: root, "not a run directory (no model.json)"),
])
def test_bad_run_dir_is_a_clear_error(tmp_path, make, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_run(make(tmp_path))


def test_damaged_silver_file_names_file_and_line(tmp_path):
    run_dir = build_run_dir(tmp_path)
    lines = (run_dir / "silver.jsonl").read_text().splitlines()
    lines[2] = '{"id": "u2", "label": '
    (run_dir / "silver.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"silver\.jsonl:3: not valid JSON"):
        load_run(run_dir)


def test_cli_report_and_bad_dir(run_dir, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli.main(["report", str(run_dir), "--out", str(out), "--no-embeddings", "--no-sandbox", "--card"]) == 0
    assert out.is_file() and (run_dir / "CARD.md").is_file()
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "lfagent report: error:" in err and "run directory not found" in err and "Traceback" not in err


def test_report_and_audit_leave_the_run_directory_as_they_found_it(tmp_path, capsys):
    run_dir = build_run_dir(tmp_path)  # run.sqlite in WAL mode, closed, as a finished run leaves it
    before = {p.name for p in run_dir.iterdir()}
    assert cli.main(["report", str(run_dir), "--no-embeddings", "--no-sandbox", "--card"]) == 0
    assert cli.main(["audit", str(run_dir), "--no-embeddings", "--no-sandbox", "--show", "0"]) == 0
    assert "| date | 2023-11-14 22:13 UTC |" in (run_dir / "CARD.md").read_text()  # run.sqlite was read
    assert {p.name for p in run_dir.iterdir()} == before | {"report.html", "CARD.md", "review.jsonl"}


def make_multilabel(run_dir: Path) -> Path:
    """Turn the fixture into a multi-label run: label lists in silver and heldout, multi_label in the task."""
    model = json.loads((run_dir / "model.json").read_text())
    model["task"]["multi_label"] = True
    (run_dir / "model.json").write_text(json.dumps(model))
    silver = silver_rows(run_dir)
    for row in silver:
        row["labels"] = [c for c, p in row.pop("probs").items() if p >= 0.5] if row.pop("label") else []
        row["probs"] = {"HAM": 0.7 if "HAM" in row["labels"] else 0.2, "SPAM": 0.8 if "SPAM" in row["labels"] else 0.1}
    (run_dir / "silver.jsonl").write_text("".join(json.dumps(r) + "\n" for r in silver))
    held = [json.loads(line) for line in (run_dir / "heldout.jsonl").read_text().splitlines()]
    for row in held:
        row["label"] = [row["label"]]
    (run_dir / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held))
    return run_dir


@pytest.mark.slow
def test_multilabel_run_card_report_and_audit(tmp_path):
    from lfagent.report.audit import audit_run

    run_dir = make_multilabel(build_run_dir(tmp_path))
    card = write_run_card(run_dir).read_text(encoding="utf-8")
    assert "Cross-fitted micro F1" in card and "(multi-label)" in card
    assert "per-class probability vs how often the class is present" in card
    html = write_report(run_dir, embeddings=False, sandbox=False).read_text(encoding="utf-8")
    assert html.count("data:image/svg+xml") == 4
    result = audit_run(run_dir, top=3, votes=False)
    assert {row.id for row in result.seed_errors} == {"s3", "s10", "s17"}
    assert all(isinstance(row.given_label, list) for row in result.rows)
