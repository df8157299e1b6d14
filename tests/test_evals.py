"""The benchmark harness (evals/): data loading, draws, scoring, parsing, and one tiny end-to-end run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))  # evals/ is a folder of the repository, not of the installed package

from evals.datasets import (TREC_FINE_LABELS, BenchData, Split, load_dataset, load_goemotions,  # noqa: E402
                            load_wrench, make_draw, strip_trec_labels)
from evals.metrics import mean_sd, prediction_scores  # noqa: E402
from evals.systems import parse_class_answer, read_silver, write_task_dir, DrawContext  # noqa: E402

needs_data = pytest.mark.skipif(not (SHARED_DATA / "wrench-youtube").is_dir(), reason="shared data not present")


def _toy(n_train=60, k=3, seed=0) -> BenchData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n_train)
    y[:3] = 0  # class 2 stays rare: draws must still include it
    y[y == 2] = 1
    y[-1] = 2
    train = Split(ids=[f"train:{i}" for i in range(n_train)], texts=[f"text {i}" for i in range(n_train)], y=y)
    test = Split(ids=["test:0", "test:1"], texts=["a", "b"], y=np.array([0, 1]))
    return BenchData(name="toy", class_names=["A", "B", "C"], train=train, test=test)


def test_draws_are_seeded_disjoint_and_cover_every_class():
    data = _toy()
    first, again, other = (make_draw(data, n_seeds=10, extra_unlabeled=20, seed=s) for s in (3, 3, 4))
    assert np.array_equal(first.seed_rows, again.seed_rows) and np.array_equal(first.extra_rows, again.extra_rows)
    assert not np.array_equal(first.seed_rows, other.seed_rows)
    assert len(first.seed_rows) == 10 and len(first.extra_rows) == 20
    assert not set(first.seed_rows) & set(first.extra_rows)
    assert set(data.train.y[first.seed_rows]) == {0, 1, 2}  # the single class-2 row was swapped in


def test_scores_accuracy_f1_of_positive_class_and_multilabel():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    plain = prediction_scores(probs, y, multi_label=False)
    assert plain["score"] == plain["accuracy"] == 0.75
    spam = prediction_scores(probs, y, multi_label=False, positive_class=1)
    assert spam["score"] == pytest.approx(2 * 2 / (2 + 3))  # tp 2, predicted 2, true 3
    multi = prediction_scores(np.array([[0.9, 0.2], [0.1, 0.7]]), np.array([[1, 1], [0, 1]]), multi_label=True)
    assert multi["score"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert 0 <= multi["ece"] <= 1


def test_mean_sd_ignores_missing_values():
    assert mean_sd([0.5, None, 0.7]) == (pytest.approx(0.6), pytest.approx(np.std([0.5, 0.7], ddof=1)))
    assert mean_sd([None]) == (None, None)
    assert mean_sd([0.4]) == (0.4, 0.0)


def test_zeroshot_answers_parse_to_class_indices():
    names = ["DESC", "ENTY", "HUM"]
    assert parse_class_answer("The answer is HUM.", names, multi_label=False) == [2]
    assert parse_class_answer("enty, maybe DESC", names, multi_label=False) == [1]  # earliest wins
    assert parse_class_answer("no idea", names, multi_label=False) == []
    assert parse_class_answer("joy, DESC", ["joy", "DESC", "anger"], multi_label=True) == [0, 1]


def test_task_dir_round_trips_through_lfagent_readers(tmp_path):
    from lfagent.data.dataset import load_seeds, load_unlabeled
    from lfagent.task import load_task

    data = _toy()
    draw = make_draw(data, n_seeds=10, extra_unlabeled=5, seed=0)
    ctx = DrawContext(data=data, draw=draw, embed=lambda texts: np.zeros((len(texts), 2)))
    task = load_task(write_task_dir(tmp_path, ctx))
    seeds, unlabeled = load_seeds(task), load_unlabeled(task)
    assert seeds.ids == [data.train.ids[i] for i in draw.seed_rows]
    assert list(seeds.y) == list(data.train.y[draw.seed_rows])
    assert unlabeled.ids == data.test.ids + [data.train.ids[i] for i in draw.extra_rows]
    (tmp_path / "silver.jsonl").write_text(json.dumps({"id": "test:0", "label": "B", "covered": False,
                                                       "probs": {"A": 0.2, "B": 0.7, "C": 0.1}}) + "\n")
    probs, covered, decided = read_silver(tmp_path / "silver.jsonl", data.class_names)["test:0"]
    assert list(probs) == [0.2, 0.7, 0.1] and covered is False and decided is None
    (tmp_path / "multi.jsonl").write_text(json.dumps({"id": "x", "labels": ["C"], "covered": True,
                                                      "probs": {"A": 0.2, "B": 0.7, "C": 0.3}}) + "\n")
    _, _, decided = read_silver(tmp_path / "multi.jsonl", data.class_names)["x"]
    assert decided.tolist() == [False, False, True]  # lfagent's own decision, not p >= 0.5


@needs_data
def test_goemotions_subset_is_multilabel_with_every_row_labelled():
    data = load_goemotions(SHARED_DATA / "goemotions", n_train=200, n_test=50)
    assert data.multi_label and len(data.class_names) == 6 and "neutral" not in data.class_names
    assert data.train.y.shape == (200, 6) and data.test.y.shape == (50, 6)
    assert (data.train.y.sum(axis=1) >= 1).all() and (data.test.y.sum(axis=1) >= 1).all()


@needs_data
def test_wrench_loader_reads_splits_and_weak_labels():
    data = load_dataset("sms", SHARED_DATA)
    assert data.class_names == ["ham", "spam"] and data.positive_class == 1
    assert len(data.test) == 500 and data.train.L.shape == (len(data.train), 73)
    assert set(np.unique(data.train.L)) <= {-1, 0, 1}
    assert not set(data.train.ids) & set(data.test.ids)
    other = load_wrench(SHARED_DATA / "wrench-sms")  # as given by --wrench-dir: named after its folder
    assert other.name == "wrench-sms" and other.positive_class == 1 and other.description == data.description


def test_trec_label_words_are_stripped_only_when_every_text_has_one():
    assert strip_trec_labels(["ind Who was Galileo ?", "def What is an atom ?"]) == ["who was galileo ?",
                                                                                 "what is an atom ?"]
    mixed = ["ind Who was Galileo ?", "What is an atom ?"]
    assert strip_trec_labels(mixed) == mixed  # not the leaky format: left as it is


@needs_data
def test_trec_test_questions_look_like_train_ones():
    data = load_dataset("trec", SHARED_DATA)
    assert len(data.test) == 500
    firsts = {text.split()[0] for text in data.test.texts}
    assert not firsts & TREC_FINE_LABELS and all(text == text.lower() for text in data.test.texts)
    assert {"what", "how", "who"} <= firsts


@needs_data
@pytest.mark.slow
def test_tiny_benchmark_writes_table_json_and_plot(tmp_path, capsys):
    import evals.__main__ as evals_main

    out = tmp_path / "results"
    code = evals_main.cli(["--datasets", "youtube", "--systems", "lr-seeds,wrench-mv,lfagent-none", "--draws", "1",
                           "--seeds", "20", "--extra-unlabeled", "150", "--out", str(out), "--quiet"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    summary = {s["system"]: s for s in results["summary"]}
    assert set(summary) == {"lr-seeds", "wrench-mv", "lfagent-none"}
    for system, s in summary.items():
        assert s["failed"] == 0, s["note"]
        assert 0.0 <= s["score"]["mean"] <= 1.0 and 0.0 <= s["coverage"]["mean"] <= 1.0
        assert s["end_model"]["mean"] is not None
    assert summary["wrench-mv"]["score"]["mean"] > 0.7
    assert summary["lr-seeds"]["score"]["mean"] > 0.6
    assert all(r["n_seeds"] == 20 and r["n_extra_unlabeled"] == 150 for r in results["runs"])
    text = (out / "RESULTS.md").read_text()
    assert "Command: `python -m evals" in text and "| wrench-mv |" in text
    assert (out / "results.png").stat().st_size > 1000
    assert "| lr-seeds |" in capsys.readouterr().out


@needs_data
def test_the_benchmark_hands_over_its_tables_after_every_run(tmp_path):
    from evals.bench import BenchConfig, run_benchmark

    seen = []
    config = BenchConfig(datasets=["youtube"], systems=["wrench-mv", "lr-seeds"], draws=2, n_seeds=20,
                         extra_unlabeled=50, data_dir=str(SHARED_DATA))
    results = run_benchmark(config, on_run_done=lambda partial: seen.append(
        [(s["system"], s["draws"]) for s in partial["summary"]]), work_dir=tmp_path)
    # a benchmark stopped after its third run keeps a summary of those three runs
    assert seen == [[("wrench-mv", 1)], [("wrench-mv", 1), ("lr-seeds", 1)], [("wrench-mv", 2), ("lr-seeds", 1)],
                    [("wrench-mv", 2), ("lr-seeds", 2)]]
    assert [(s["system"], s["draws"]) for s in results["summary"]] == seen[-1]


def test_evals_arguments_build_the_configuration(tmp_path):
    import argparse

    import evals.__main__ as evals_main

    def parse(argv):
        parser = argparse.ArgumentParser()
        evals_main.add_arguments(parser)
        return parser.parse_args(argv)

    args = parse(["--datasets", "youtube", "--quick", "--out", str(tmp_path)])
    assert args.datasets == ["youtube"] and args.quick and args.out == str(tmp_path)
    config = evals_main.build_config(args)
    assert config.draws == 1 and config.extra_unlabeled == evals_main.QUICK_EXTRA_UNLABELED
    assert "lfagent-none" in config.systems and "zeroshot" not in config.systems
    with_llm = evals_main.build_config(parse(["--llm", "openai:m"]))
    assert "lfagent-openai:m" in with_llm.systems and "zeroshot" in with_llm.systems


def test_bench_is_not_a_command_of_the_installed_cli():
    from lfagent.cli import COMMANDS

    assert "bench" not in COMMANDS  # the benchmark lives in the checkout: python -m evals


def _run(dataset, system, draw, score, end=None):
    return {"dataset": dataset, "system": system, "draw": draw, "score": score, "end_model": end}


def test_paired_differences_compare_the_same_draws_only():
    from evals.paired import paired_differences

    runs = [_run("sms", "lfagent-none", 0, 0.80, 0.70), _run("sms", "lfagent-local", 0, 0.82, 0.70),
            _run("sms", "lfagent-none", 1, 0.90, 0.75), _run("sms", "lfagent-local", 1, 0.85, 0.7502),
            _run("sms", "lfagent-local", 2, 0.99, 0.99),  # no baseline for draw 2: not compared
            _run("sms", "lr-seeds", 0, 0.95), {**_run("sms", "lfagent-none", 2, 0.5), "error": "boom"}]
    [row] = paired_differences(runs)
    assert row["system"] == "lfagent-local" and row["draws"] == [0, 1]
    assert row["score"]["per_draw"] == [pytest.approx(0.02), pytest.approx(-0.05)]
    assert row["score"]["mean"] == pytest.approx(-0.015)
    assert (row["score"]["wins"], row["score"]["ties"], row["score"]["losses"]) == (1, 0, 1)
    assert (row["end_model"]["wins"], row["end_model"]["ties"], row["end_model"]["losses"]) == (0, 2, 0)


def _part(draws, systems=("lfagent-none", "lfagent-local"), **config):
    runs = [_run("sms", s, d, 0.8 + 0.01 * d + 0.02 * (s != "lfagent-none"), 0.7) for d in draws for s in systems]
    for r in runs:
        r.update(accuracy=r["score"], coverage=0.6, ece=0.05, llm_calls=3, llm_tokens=100, wall_s=1.0, note="")
    base = {"n_seeds": 100, "extra_unlabeled": 2000, "rounds": 2, "max_llm_calls": 40, "zeroshot_limit": None,
            "systems": list(systems), "first_draw": min(draws), "draws": len(draws)}
    meta = {"classes": ["ham", "spam"], "multi_label": False, "n_train": 10, "n_test": 5, "n_lfs": None,
            "score": "F1(spam)"}
    return {"config": {**base, **config}, "datasets": {"sms": meta}, "runs": runs, "command": f"part {draws}",
            "machine": {"git_commit": "abc1234"}}


def test_merge_joins_draws_into_one_table_and_refuses_mismatched_parts(tmp_path, capsys):
    from evals.merge import cli, merge_results
    from lfagent.errors import InputError

    merged = merge_results([("a", _part([0, 1])), ("b", _part([2, 3, 4]))])
    assert merged["config"]["draw_seeds"] == [0, 1, 2, 3, 4]
    [local] = [s for s in merged["summary"] if s["system"] == "lfagent-local"]
    assert local["draws"] == 5 and local["score"]["mean"] == pytest.approx(0.84)
    with pytest.raises(InputError, match="'max_llm_calls'"):
        merge_results([("a", _part([0, 1])), ("b", _part([2], max_llm_calls=10))])
    with pytest.raises(InputError, match="sms draw 1 of lfagent-none is also in a"):
        merge_results([("a", _part([0, 1])), ("b", _part([1, 2]))])

    for name, part in (("a", _part([0, 1])), ("b", _part([2, 3, 4]))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(part))
    assert cli([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "all")]) == 0
    text = (tmp_path / "all" / "RESULTS.md").read_text()
    assert "5 draw(s) (seeds 0..4)" in text and "part [2, 3, 4]" in text
    assert "| sms | lfagent-local | 0, 1, 2, 3, 4 | +0.020 |" in text and "5 / 0 / 0" in text
    assert cli([str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "no results.json" in capsys.readouterr().err
