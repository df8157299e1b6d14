"""Label-error audit: planted seed errors rank first; silver review signals; the queue file and CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lfagent import cli
from lfagent.report.audit import AuditRow, audit_run, rank_seed_errors, rank_silver_review, write_review_queue
from lfagent.errors import InputError
from run_dir_fixture import build_run_dir

PLANTED = (3, 10, 17, 25)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_run_dir(tmp_path_factory.mktemp("audit"), flip=PLANTED)


def confident_probs(y: np.ndarray, k: int, rng, low: float = 0.6) -> np.ndarray:
    """Probabilities that favour class y[i] with confidence in [low, 0.98], the rest spread at random."""
    top = rng.uniform(low, 0.98, len(y))
    rest = rng.dirichlet(np.ones(k - 1), len(y)) * (1 - top)[:, None]
    probs = np.zeros((len(y), k))
    for i, c in enumerate(y):
        probs[i] = np.insert(rest[i], c, top[i])
    return probs


def test_planted_seed_errors_rank_at_the_top_of_the_run_audit(run_dir):
    result = audit_run(run_dir, top=10, votes=False)
    top = result.seed_errors[:len(PLANTED)]
    assert {row.id for row in top} == {f"s{i}" for i in PLANTED}
    # the fixture's two ambiguous seeds (model leaning 0.55-0.65 against a right label) come after
    assert {row.id for row in result.seed_errors[len(PLANTED):]} == {"s6", "s21"}
    assert [row.id for row in audit_run(run_dir, top=2, votes=False).seed_errors] == [r.id for r in top[:2]]
    for row in top:
        assert row.kind == "seed_error" and row.given_label != row.suggested_label
        assert row.score > 0.85 and "cleanlab flags it" in row.reason and row.text
    # seeds whose label the model agrees with are not listed
    assert all(row.probs[row.suggested_label] > row.probs[row.given_label] for row in result.seed_errors)


@pytest.mark.parametrize("k, seed", [(3, 0), (5, 1)])
def test_flipped_labels_rank_first_on_synthetic_seeds(k, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, 150)
    probs = confident_probs(truth, k, rng)
    flipped = rng.choice(150, 8, replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, k, 8)) % k
    probs[flipped] = confident_probs(truth[flipped], k, rng, low=0.85)  # the model is sure of the truth
    others = np.setdiff1d(np.arange(150), flipped)[:12]  # right labels the model mildly doubts
    probs[others] = confident_probs((truth[others] + 1) % k, k, rng, low=0.5)
    probs[others] = 0.5 * probs[others] + 0.5 / k
    names = [f"c{c}" for c in range(k)]
    rows = rank_seed_errors(list(range(150)), [None] * 150, probs, given, names, multi_label=False, top=8)
    assert {row.id for row in rows} == set(flipped.tolist())
    assert all(row.suggested_label == names[truth[row.id]] for row in rows)


def test_multilabel_seed_errors_rank_first():
    rng = np.random.default_rng(2)
    n, k = 120, 4
    truth = (rng.random((n, k)) < 0.35).astype(int)
    probs = np.where(truth == 1, rng.uniform(0.6, 0.95, (n, k)), rng.uniform(0.03, 0.35, (n, k)))
    flipped = rng.choice(n, 6, replace=False)
    given = truth.copy()
    cls = rng.integers(0, k, 6)
    given[flipped, cls] = 1 - given[flipped, cls]
    probs[flipped, cls] = np.where(truth[flipped, cls] == 1, 0.97, 0.02)
    names = ["a", "b", "c", "d"]
    rows = rank_seed_errors(list(range(n)), [None] * n, probs, given, names, multi_label=True, top=6)
    assert {row.id for row in rows} == set(flipped.tolist())
    for row in rows:
        assert set(row.suggested_label) ^ set(row.given_label)  # the suggestion changes some label


def test_silver_review_puts_uncertain_uncovered_and_disputed_records_first(run_dir):
    result = audit_run(run_dir, top=60, votes=True, embeddings=False, sandbox=False)
    rows = result.silver_review
    assert len(rows) == 55 and all(row.text for row in rows)  # texts come from the unlabeled file
    scores = [row.score for row in rows]
    assert scores == sorted(scores, reverse=True)
    by_id = {row.id: row for row in rows}
    uncovered = [row for row in rows if "no LF voted" in row.reason]
    confident = [row for row in rows if max(row.probs.values()) >= 0.9]
    assert uncovered and confident and min(r.score for r in uncovered) > max(r.score for r in confident)
    disputed = [row for row in rows if "LFs disagree" in row.reason]
    assert disputed and all("subscribe to my channel" in row.text for row in disputed)
    assert min(r.score for r in disputed) > max(r.score for r in confident)
    assert by_id["u0"].given_label == "SPAM"


def test_rare_predicted_class_raises_the_score():
    probs = np.array([[0.9, 0.1]] * 48 + [[0.1, 0.9]] * 2)
    rows = rank_silver_review(list(range(50)), [None] * 50, probs, np.ones(50, bool), ["A", "B"],
                              multi_label=False, top=2)
    assert {row.id for row in rows} == {48, 49}
    assert all("rare predicted class B" in row.reason for row in rows)


def test_review_queue_file_and_cli(run_dir, tmp_path, capsys):
    out = tmp_path / "queue.jsonl"
    code = cli.main(["audit", str(run_dir), "--top", "5", "--out", str(out), "--no-embeddings", "--no-sandbox"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["seed_error"] * 5 + ["silver_review"] * 5
    assert {r["id"] for r in rows[:4]} == {f"s{i}" for i in PLANTED}
    for row in rows:
        AuditRow.model_validate(row)
        assert {"kind", "id", "text", "given_label", "suggested_label", "score", "reason"} <= set(row)
    printed = capsys.readouterr().out
    assert "Seed labels the cross-fitted model contradicts" in printed and f"wrote {out}" in printed
    assert write_review_queue(tmp_path / "sub" / "q.jsonl", []) == 0


def test_bad_run_dir_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(InputError, match="not a run directory"):
        audit_run(tmp_path)
    assert cli.main(["audit", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "lfagent audit: error:" in err and "run directory not found" in err
    assert cli.main(["audit", str(tmp_path), "--top", "0"]) == 2
