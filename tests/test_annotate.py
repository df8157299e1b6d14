"""Record annotation by the LLM (lfagent/agent/annotate.py): which records, batched requests read leniently,
the budget, the liar found out, resume after kill -9, and generate reproducing silver with the lookup LF."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLE_TASK
from lfagent.agent.annotate import ANNOTATION_LF, default_annotate, select_for_annotation
from lfagent.lf import LabelingFunction, Provenance, text_key
from lfagent.propose.llm_labels import class_named, parse_labels
from lfagent.sandbox.apply import apply_lfs

NAMES = ["HAM", "SPAM"]


# ---- reading replies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, n, expected", [
    ("1. spam\n2) Ham\n[3] **SPAM**\n4. unknown\n12. ham", 4, {0: "SPAM", 1: "HAM", 2: "SPAM"}),
    ("Here are the labels:\n1: SPAM - asks to subscribe\n2 - ham", 2, {0: "SPAM", 1: "HAM"}),
    ('{"1": "spam", "2": {"label": "HAM"}}', 2, {0: "SPAM", 1: "HAM"}),
    ('```json\n["spam", "ham", "eggs"]\n```', 3, {0: "SPAM", 1: "HAM"}),
    ('[{"id": 2, "class": "spam"}]', 2, {1: "SPAM"}),
    ('{"labels": ["ham", "spam"]}', 2, {0: "HAM", 1: "SPAM"}),
    ("Spam.", 1, {0: "SPAM"}),
    ('{"label": "ham"}', 1, {0: "HAM"}),
    ("spam\nHAM", 2, {0: "SPAM", 1: "HAM"}),
    ("1. not spam\n2. SPAM or HAM\n3. I cannot tell", 3, {}),  # refusals and hedges are skipped, not guessed
    ("I will not label these.", 2, {}),
])
def test_replies_are_read_leniently_and_unlabelled_records_skipped(reply, n, expected):
    assert parse_labels(reply, n, NAMES) == expected


def test_class_names_match_whole_words_in_any_case():
    names = ["ABBR", "DESC", "ENTY"]
    assert class_named("  'desc' ", names) == "DESC"
    assert class_named("the class is Enty.", names) == "ENTY"
    assert class_named("DESCRIPTION", names) is None
    assert class_named(3, names) is None


# ---- choosing records --------------------------------------------------------------------------------

def _fit_like(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 60
    probs = rng.dirichlet([1, 1], size=n)
    L = np.full((n, 3), -1, dtype=np.int16)
    L[:20, 0] = 0
    L[10:20, 1] = 1  # rows 10..19: the LFs conflict
    covered = (L != -1).any(axis=1)  # rows 20..59: no LF votes
    texts = [f"record {i}" for i in range(n)]
    texts[5] = texts[25] = texts[45] = "the same text"
    return probs, covered, L, texts


def test_selection_takes_conflicts_uncovered_and_uncertain_rows_in_turn():
    probs, covered, L, texts = _fit_like()
    picked = select_for_annotation(probs, covered, L, texts, 9, seed=0)
    rows, reasons = zip(*picked)
    assert list(reasons) == ["conflict", "uncovered", "uncertain"] * 3
    assert all(10 <= i < 20 for i, r in picked if r == "conflict")
    assert all(not covered[i] for i, r in picked if r == "uncovered")
    margin = np.abs(probs[:, 0] - probs[:, 1])
    conflicts = [i for i, r in picked if r == "conflict"]
    assert conflicts == sorted(range(10, 20), key=lambda i: margin[i])[:3]  # least certain first


def test_selection_is_deterministic_dedupes_texts_and_skips_known_ones():
    probs, covered, L, texts = _fit_like()
    picked = select_for_annotation(probs, covered, L, texts, 60, seed=3)
    assert picked == select_for_annotation(probs, covered, L, texts, 60, seed=3)
    keys = [text_key(texts[i]) for i, _ in picked]
    assert len(keys) == len(set(keys)) == 58  # 60 rows, one text three times
    skip = {text_key("record 1"), text_key("the same text")}
    again = select_for_annotation(probs, covered, L, texts, 60, seed=3, skip_keys=skip)
    assert not {text_key(texts[i]) for i, _ in again} & skip and len(again) == 56
    assert select_for_annotation(probs, covered, L, texts, 0, seed=3) == []


def test_default_annotation_is_on_with_a_hosted_model_only(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert default_annotate("openai:gpt-4o-mini") > 0
    assert default_annotate("local") == default_annotate("none") == default_annotate("auto") == 0
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert default_annotate("auto") > 0


# ---- the lookup LF ------------------------------------------------------------------------------------

def _lookup_lf(**labels) -> LabelingFunction:
    return LabelingFunction(name=ANNOTATION_LF, kind="lookup", provenance=Provenance(source="llm:annotate"),
                            lookup={text_key(t): c for t, c in labels.items()})


def test_a_lookup_lf_votes_the_texts_it_holds_and_abstains_elsewhere():
    lf = _lookup_lf(**{"check out my channel": "SPAM", "love it": "HAM"})
    texts = ["check  out my\nchannel", "love it", "never seen"]
    assert apply_lfs([lf], texts, NAMES).L[:, 0].tolist() == [1, 0, -1]  # whitespace does not matter
    again = LabelingFunction.model_validate_json(lf.model_dump_json())
    assert again == lf and again.fingerprint == lf.fingerprint
    assert _lookup_lf(**{"love it": "SPAM"}).fingerprint != _lookup_lf(**{"love it": "HAM"}).fingerprint
    with pytest.raises(ValueError, match="EGGS"):
        apply_lfs([_lookup_lf(x="EGGS")], ["x"], NAMES)
    with pytest.raises(ValueError, match="lookup"):
        LabelingFunction(name="empty", kind="lookup")


# ---- against a simulated expert and liar (real HTTP, the real openai client path) -------------------

def _knowledge():
    """The simulated LLM knows the example task's test rows (its cues) and the labels of seeds and test rows."""
    from evals.simulated.knowledge import build_knowledge

    folder = EXAMPLE_TASK.parent
    test = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    seeds = [json.loads(line) for line in (folder / "seeds.jsonl").read_text().splitlines()]
    members = lambda rows: np.array([[r["label"] == c for c in NAMES] for r in rows])  # noqa: E731
    return build_knowledge(NAMES, [r["text"] for r in test], members(test),
                           record_texts=[r["text"] for r in seeds + test], record_members=members(seeds + test))


def _small_task(tmp_path: Path) -> Path:
    from test_agent import small_task

    return small_task(tmp_path, n_unlabeled=300)


def _label_requests(bodies: list[dict]) -> list[dict]:
    return [b for b in bodies if "Label each record" in b["messages"][-1]["content"]]


def _records_in(body: dict) -> int:
    records = body["messages"][-1]["content"].split("Records:\n", 1)[1].split("\n\n", 1)[0]
    return len(records.splitlines())


@pytest.fixture(scope="module")
def expert_run(tmp_path_factory):
    from evals.simulated.persona import EXPERT
    from evals.simulated.server import SimulatedLLMServer
    from lfagent.agent.run import run_agent

    tmp = tmp_path_factory.mktemp("expert")
    requests = []
    with SimulatedLLMServer(_knowledge(), EXPERT) as server, server.environment():
        original = server.reply
        server.reply = lambda body: (requests.append(body), original(body))[1]
        task = _small_task(tmp)
        summary = run_agent(task, tmp / "run", llm=server.llm_spec, rounds=1, annotate=45, embed=False)
    return {"summary": summary, "requests": requests, "task": task, "run_dir": tmp / "run"}


@pytest.mark.slow
def test_records_are_labelled_in_batches_and_the_labels_enter_as_one_kept_lf(expert_run):
    from lfagent.rundir.store import RunStore

    asked = _label_requests(expert_run["requests"])
    store = RunStore(expert_run["run_dir"])
    seed_file = EXAMPLE_TASK.parent / "seeds.jsonl"
    seeds = {text_key(json.loads(line)["text"]) for line in seed_file.read_text().splitlines()}
    assert len(asked) == math.ceil((len(seeds) + 45) / 10)  # each distinct seed text, then the records
    assert sum(map(_records_in, asked)) == len(seeds) + 45 and max(map(_records_in, asked)) == 10
    [(lf, status, _, reason)] = [entry for entry in store.lfs() if entry[0].name == ANNOTATION_LF]
    assert lf.kind == "lookup" and status == "kept", reason
    assert seeds <= set(lf.lookup) and len(lf.lookup) > len(seeds) + 30  # every seed, and the records chosen
    done = store.get_meta("annotation")
    assert done["seeds_right"] / done["seeds_labelled"] > 0.7  # the expert is right on most seeds
    usage = expert_run["summary"]["llm"]
    assert usage["by_purpose"]["annotate"]["calls"] == len(asked)
    assert usage["calls"] == usage["by_purpose"]["annotate"]["calls"] + usage["by_purpose"]["propose"]["calls"]
    model = json.loads((expert_run["run_dir"] / "model.json").read_text())
    assert ANNOTATION_LF in json.dumps(model)


@pytest.mark.slow
def test_generate_over_the_run_unlabeled_file_reproduces_silver_with_the_lookup_lf(expert_run, tmp_path):
    from lfagent.generate import generate

    unlabeled = Path(expert_run["task"]).parent / "unlabeled.jsonl"
    generate(expert_run["run_dir"], [str(unlabeled)], tmp_path / "out.jsonl", batch_size=120)
    read = lambda path: {str(r["id"]): r for r in map(json.loads, Path(path).read_text().splitlines())}  # noqa: E731
    got, silver = read(tmp_path / "out.jsonl"), read(expert_run["run_dir"] / "silver.jsonl")
    assert list(got) == list(silver)
    for rid, row in silver.items():
        assert {c: round(p, 4) for c, p in got[rid]["probs"].items()} == row["probs"], rid
        assert got[rid]["label"] == row["label"] and got[rid]["covered"] == row["covered"], rid


@pytest.mark.slow
def test_a_liars_labels_are_dropped_with_the_reason(tmp_path):
    from evals.simulated.persona import LIAR
    from evals.simulated.server import SimulatedLLMServer
    from lfagent.agent.run import run_agent
    from lfagent.rundir.store import RunStore

    with SimulatedLLMServer(_knowledge(), LIAR) as server, server.environment():
        run_agent(_small_task(tmp_path), tmp_path / "run", llm=server.llm_spec, rounds=1, annotate=30, embed=False)
        flipped = server.stats["flipped"]
    store = RunStore(tmp_path / "run")
    [(lf, status, _, reason)] = [entry for entry in store.lfs() if entry[0].name == ANNOTATION_LF]
    assert flipped >= len(lf.lookup) > 0 and status == "dropped"
    assert "seed accuracy 0.00" in reason
    assert store.get_meta("annotation")["seeds_right"] == 0


@pytest.mark.slow
def test_annotation_stops_when_the_call_budget_is_spent(tmp_path):
    from evals.simulated.persona import EXPERT
    from evals.simulated.server import SimulatedLLMServer
    from lfagent import Session
    from lfagent.llm.budget import LLMLimits

    with SimulatedLLMServer(_knowledge(), EXPERT) as server, server.environment():
        with Session(_small_task(tmp_path), tmp_path / "run", llm=server.llm_spec, embed=False,
                     limits=LLMLimits(max_calls=4)) as session:
            report = session.annotate(30)
            again = session.annotate(30)  # the same requests: answered from the cache or refused, never paid
            usage = session.store.llm_usage()
            lookup = session.get_lf(ANNOTATION_LF).lookup
        sent = server.stats["requests"]
    assert report.calls > 4 and report.budget_spent and len(report.failures) == report.calls - 4
    assert sent == usage["calls"] == 4
    assert again.seeds_labelled + again.labelled == report.seeds_labelled + report.labelled > 0
    assert len(lookup) == report.seeds_labelled + report.labelled


@pytest.mark.slow
def test_kill_9_during_annotation_then_resume_pays_no_call_twice(tmp_path):
    from llm_server import Reply, ScriptedLLMServer

    from agent_script import respond
    from lfagent.rundir.store import RunStore

    def slow_labels(body):
        reply = respond(body)
        return Reply(text=str(reply), delay=0.5) if "Label each record" in body["messages"][-1]["content"] else reply

    with ScriptedLLMServer(responder=slow_labels) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
        task, run_dir = _small_task(tmp_path), tmp_path / "run"
        cmd = [sys.executable, "-m", "lfagent.cli", "run", str(task), "--out", str(run_dir), "--llm",
               "openai:test-model", "--rounds", "1", "--annotate", "60", "--no-embeddings", "--quiet"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while len(_label_requests(server.requests)) < 8 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = RunStore(run_dir)
        rows = store.db.execute("SELECT request FROM llm_calls WHERE purpose='annotate' AND response IS NOT NULL")
        paid = {json.dumps(json.loads(request)["messages"], sort_keys=True) for (request,) in rows}
        store.close()
        assert 0 < len(paid) < 16, "the kill did not land during annotation"
        before = len(server.requests)
        resumed = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", "--resume", str(run_dir), "--quiet"],
                                 env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        again = [json.dumps(b["messages"], sort_keys=True) for b in _label_requests(server.requests[before:])]
    assert again and not set(again) & paid
    store = RunStore(run_dir)
    assert store.llm_usage_by_purpose()["annotate"]["calls"] == 16  # (94 distinct seed texts + 60) / 10, once
    assert store.get_meta("annotation")["labelled"] == 60 and (run_dir / "silver.jsonl").is_file()
    assert "record labels: 16 calls" in resumed.stdout



def test_held_out_seeds_see_the_lookup_lf_as_often_as_silver_rows_do():
    from lfagent.fit.crossfit import seen_as_unlabeled

    keyword = LabelingFunction(name="kw", kind="keywords", keywords=["x"], label="SPAM")
    lfs = [keyword, _lookup_lf(x="SPAM")]
    L_seed = np.zeros((1000, 2), dtype=np.int16)  # both vote on every seed
    L_unl = np.full((500, 2), -1, dtype=np.int16)
    L_unl[:50, 1] = 1  # the lookup votes on a tenth of the unlabeled rows
    seen = seen_as_unlabeled(L_seed, L_unl, lfs, seed=0)
    assert (seen[:, 0] == 0).all() and 0.07 < (seen[:, 1] != -1).mean() < 0.13
    assert (seen == seen_as_unlabeled(L_seed, L_unl, lfs, seed=0)).all() and (L_seed == 0).all()
    assert seen_as_unlabeled(L_seed, L_unl, [keyword, keyword], seed=0) is L_seed
