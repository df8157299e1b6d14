"""One labeler behind every face: generate (local and Ray), Session.label_text and the run's own
silver.jsonl must give the same probabilities, labels and covered flags, with embeddings (the expert
fine-tuned on the seeds, here with two optimiser steps per fine-tune, and the default frozen expert) and
without, single- and multi-label, and after --resume."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLE_TASK, example_subset, goemotions_task
from lfagent import Session
from lfagent.cli import main as cli_main
from lfagent.fit.fold_fit import PipelineConfig
from lfagent.generate import generate
from lfagent.report import card_facts, load_run, render_card
from lfagent.rundir.files import load_model

pytestmark = pytest.mark.slow


def fit_run(task: Path, run_dir: Path, embed: bool, expert: str = "frozen") -> dict:
    """Fit in process, so the run's unrounded probabilities are at hand as well as silver.jsonl."""
    config = PipelineConfig(expert=expert, fewshot_max_steps=2)
    with Session(task, run_dir, llm="none", embed=embed, config=config) as session:
        session.fit()
        session.write_outputs()
        result = session.result
        first = session.unlabeled.texts[0]
        return {"ids": [str(i) for i in session.unlabeled.ids], "probs": result.probs, "covered": result.covered,
                "task": task, "run_dir": run_dir, "label_text": session.label_text(first), "first": first}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # conftest's embedding cache, set for the whole module before Ray starts: its workers inherit it.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LFAGENT_CACHE", str(tmp_path_factory.getbasetemp() / "lfagent-cache"))
        base = tmp_path_factory.mktemp("runs")
        ge = goemotions_task(base / "ge", n_seeds=100, n_unlabeled=300)
        yt = example_subset(base / "yt-task", n_unlabeled=500)  # two encoders embed it: a third of the example
        yield {("youtube", True): fit_run(yt, base / "yt-emb", True, expert="finetuned"),
               ("youtube", False): fit_run(EXAMPLE_TASK, base / "yt", False),
               ("goemotions", True): fit_run(ge, base / "ge-emb", True)}


def read_rows(path: Path) -> dict[str, dict]:
    return {str(r["id"]): r for r in map(json.loads, path.read_text().splitlines())}


def assert_reproduces(run: dict, out: Path) -> None:
    got = read_rows(out)
    silver = read_rows(Path(run["run_dir"]) / "silver.jsonl")
    assert list(got) == run["ids"] == list(silver)
    names = list(silver[run["ids"][0]]["probs"])
    key = "labels" if "labels" in silver[run["ids"][0]] else "label"
    for i, rid in enumerate(run["ids"]):
        row, expected = got[rid], silver[rid]
        probs = np.array([row["probs"][c] for c in names])
        assert np.abs(probs - run["probs"][i]).max() <= 1e-9, rid
        assert [round(p, 4) for p in probs] == [expected["probs"][c] for c in names], rid
        assert row[key] == expected[key] and row["covered"] == expected["covered"] == bool(run["covered"][i])


@pytest.mark.parametrize("case", [("youtube", True), ("youtube", False), ("goemotions", True)],
                         ids=["youtube-embeddings", "youtube-no-embeddings", "goemotions-embeddings"])
@pytest.mark.parametrize("workers", [1, 2])
def test_local_generate_reproduces_silver(runs, tmp_path, case, workers):
    run = runs[case]
    unlabeled = Path(run["task"]).parent / "unlabeled.jsonl"
    summary = generate(run["run_dir"], [str(unlabeled)], tmp_path / "out.jsonl", batch_size=200, workers=workers)
    assert_reproduces(run, tmp_path / "out.jsonl")
    from lfagent.generate import job
    assert not job._cache  # the encoders it opened are closed, with their cache connections
    # Its dataset card counts what silver.jsonl holds: records, coverage, class distribution.
    run_card = render_card(card_facts(load_run(run["run_dir"])))
    assert counts_section(Path(summary.card).read_text()) == counts_section(run_card)


def counts_section(card: str) -> str:
    return card.split("## Counts", 1)[1].split("## Accuracy estimate", 1)[0]


def test_the_stored_labeler_joins_the_embedding_expert(runs):
    """The defect this file guards against: generate used the expert only on uncovered rows."""
    labeler = load_model(runs[("youtube", True)]["run_dir"]).labeler
    assert labeler.expert is not None and labeler.join == "product" and labeler.embedder
    assert labeler.expert_embedder.startswith("finetuned-") and labeler.needs_expert_embeddings
    assert load_model(runs[("goemotions", True)]["run_dir"]).labeler.expert_embedder is None  # frozen
    assert load_model(runs[("youtube", False)]["run_dir"]).labeler.expert is None


@pytest.mark.parametrize("case", [("youtube", True), ("goemotions", True)], ids=["youtube", "goemotions"])
def test_label_text_gives_the_silver_probabilities(runs, case):
    run = runs[case]
    answer = run["label_text"]
    assert np.allclose(list(answer["probs"].values()), run["probs"][0], atol=1e-6)  # one text encoded alone
    assert answer["covered"] == bool(run["covered"][0])


def test_generate_reproduces_silver_after_resume(runs, tmp_path):
    run = runs[("youtube", False)]
    assert cli_main(["run", "--resume", str(run["run_dir"]), "--quiet"]) == 0
    generate(run["run_dir"], [str(EXAMPLE_TASK.parent / "unlabeled.jsonl")], tmp_path / "out.jsonl")
    assert_reproduces(run, tmp_path / "out.jsonl")  # the resumed run refits the same model


def test_ray_generate_reproduces_silver(runs, tmp_path):
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        for case in [("youtube", True), ("goemotions", True)]:
            run = runs[case]
            out = tmp_path / f"{case[0]}.jsonl"
            generate(run["run_dir"], [str(Path(run["task"]).parent / "unlabeled.jsonl")], out, engine="ray",
                     workers=2, batch_size=400)
            assert_reproduces(run, out)
            # the actors let go of the embedding cache (open connections keep embeddings.sqlite-wal/-shm);
            # Ray Data shuts its actor pool down asynchronously after the last block, so allow it time
            cache, deadline = Path(os.environ["LFAGENT_CACHE"]), time.monotonic() + 30
            while _other_processes_holding(cache) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not _other_processes_holding(cache)
    finally:
        ray.shutdown()


def _other_processes_holding(folder: Path) -> list[str]:
    """Files under `folder` that processes other than this one hold open (Linux /proc)."""
    held = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(str(folder)):
                        held.append(f"{pid}: {target}")
        except OSError:  # a process that ended, or one we may not read
            continue
    return held
