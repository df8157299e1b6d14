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

from conftest import EXAMPLE_TASK, GOEMOTIONS_CLASSES, goemotions_rows
from lfagent.agent.annotate import ANNOTATION_LF, annotation_lf_name, default_annotate, select_for_annotation
from lfagent.lf import ANNOTATION_SOURCE, LabelingFunction, Provenance, text_key
from lfagent.propose.llm_labels import class_named, parse_label_sets, parse_labels
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


@pytest.mark.parametrize("reply, n, expected", [
    ("1. joy, surprise\n2. none\n3) Anger and JOY\n4. unknown\n5. joy, eggs", 5,
     {0: ("joy", "surprise"), 1: (), 2: ("joy", "anger")}),  # a part naming no class drops the record
    ('{"1": ["surprise", "joy"], "2": "anger", "3": "joy or anger"}', 3,
     {0: ("joy", "surprise"), 1: ("anger",)}),
    ("No class.", 1, {0: ()}),
    ("joy; anger", 1, {0: ("joy", "anger")}),
])
def test_multi_label_replies_give_every_class_named_or_none(reply, n, expected):
    assert parse_label_sets(reply, n, ["joy", "anger", "surprise"]) == expected


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


def test_multi_label_selection_takes_the_rows_with_the_least_certain_class_and_sees_no_conflict():
    probs = np.array([[0.9, 0.05], [0.55, 0.99], [0.7, 0.1], [0.02, 0.97]])
    L = np.array([[0, 1], [0, -1], [-1, -1], [1, 1]])  # LFs voting two classes on row 0: no conflict here
    picked = select_for_annotation(probs, np.array([True, True, False, True]), L, [f"r{i}" for i in range(4)], 4,
                                   seed=0, multi_label=True)
    assert picked == [(2, "uncovered"), (1, "uncertain"), (0, "uncertain"), (3, "uncertain")]


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
               "openai:test-model", "--rounds", "1", "--annotate", "60", "--annotate-batch", "7", "--no-embeddings",
               "--quiet"]
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
        assert 0 < len(paid) < 22, "the kill did not land during annotation"
        before = len(server.requests)
        # Another --annotate-batch on resume: the stored plan's requests are asked, so the cache answers the paid.
        resumed = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", "--resume", str(run_dir), "--quiet",
                                  "--annotate-batch", "10"], env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        again = [json.dumps(b["messages"], sort_keys=True) for b in _label_requests(server.requests[before:])]
    assert again and not set(again) & paid
    store = RunStore(run_dir)
    assert store.llm_usage_by_purpose()["annotate"]["calls"] == 22  # (94 distinct seed texts + 60) / 7, once
    assert store.get_meta("annotation")["labelled"] == 60 and (run_dir / "silver.jsonl").is_file()
    assert "record labels: 22 calls" in resumed.stdout



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


# ---- the LLM's labels train the fine-tuned expert's final classifier ----------------------------------

def _annotation(lookup: dict[str, str], label: str | None = None, name: str = ANNOTATION_LF) -> LabelingFunction:
    return LabelingFunction(name=name, kind="lookup", label=label, lookup=lookup,
                            provenance=Provenance(source=ANNOTATION_SOURCE))


def test_annotated_rows_weigh_each_label_by_the_llms_seed_precision_for_its_class():
    from lfagent.fit.fold_fit import annotated_rows

    lfs = [LabelingFunction(name="kw", kind="keywords", label="SPAM", keywords=["x"]), _annotation({"k": "HAM"})]
    y = np.array([0, 1, 1, 0, 1, 0])
    # the LLM on the seeds: HAM on seeds 0, 2, 5 (right on 0 and 5), SPAM on 1 and 4 (both right), 3 unlabelled
    L_seed = np.array([[-1, 0], [1, 1], [1, 0], [-1, -1], [-1, 1], [-1, 0]])
    L_unl = np.array([[1, -1], [-1, 0], [-1, 1], [1, -1]])
    rows, labels, weight = annotated_rows(lfs, L_seed, y, L_unl, 2, multi_label=False)
    assert rows.tolist() == [1, 2] and labels.tolist() == [0, 1]
    assert np.allclose(weight, [(2 + 1) / (3 + 2), (2 + 1) / (2 + 2)])  # HAM 2 of 3 right, SPAM 2 of 2
    assert annotated_rows(lfs[:1], L_seed[:, :1], y, L_unl[:, :1], 2, multi_label=False) is None


def test_multi_label_annotated_rows_give_label_sets_and_nothing_for_a_dropped_class():
    from lfagent.fit.fold_fit import annotated_rows

    # kept: the LLM's LFs for classes 0 and 2; class 1's was dropped (not among the kept LFs)
    lfs = [_annotation({"a": "c0"}, "c0", "a0"), _annotation({"b": "c2"}, "c2", "a2")]
    y = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 1], [0, 1, 0]])
    L_seed = np.array([[0, -1], [0, -1], [-1, 2], [-1, -1]])  # seeds 0-2 labelled; class 2 missed on seed 1
    L_unl = np.array([[0, 2], [-1, -1], [-1, 2]])
    rows, labels, weight = annotated_rows(lfs, L_seed, y, L_unl, 3, multi_label=True)
    assert rows.tolist() == [0, 2] and labels.tolist() == [[1, 0, 1], [0, 0, 1]]
    assert np.allclose(weight, [[(3 + 1) / 5, 0.0, (2 + 1) / 5]] * 2)


def _separable_corpus(multi_label: bool = False):
    """Seeds in two clusters (classes 0 and 1); unlabeled rows there and in a third cluster that is class 1 but
    that no seed is near, half of it labelled by the LLM. Vectors stand in for both encoders."""
    from lfagent.fit.corpus import Corpus
    from lfagent.fit.fewshot_views import ExpertViews

    rng = np.random.default_rng(0)
    centers = np.eye(3, 8) * 3.0
    seed_y = np.repeat([0, 1], 20)
    seed_emb = centers[seed_y] + rng.normal(0, 0.5, (40, 8))
    unl_cluster = np.repeat([0, 1, 2], 40)
    unl_emb = centers[unl_cluster] + rng.normal(0, 0.5, (120, 8))
    names = ["HAM", "SPAM"]
    seed_texts, unl_texts = [f"seed {i}" for i in range(40)], [f"record {i}" for i in range(120)]
    y = np.eye(2, dtype=int)[seed_y] if multi_label else seed_y
    corpus = Corpus(class_names=names, multi_label=multi_label, seed_texts=seed_texts, seed_y=y, unl_texts=unl_texts,
                    seed_emb=seed_emb, unl_emb=unl_emb)
    corpus.expert_views = ExpertViews(name="finetuned-test", model_dir=Path("unused"), seed_emb=seed_emb,
                                      unl_emb=unl_emb, heldout=[seed_emb] * 5)
    third = np.flatnonzero(unl_cluster == 2)
    asked, unasked = third[::2], third[1::2]
    lookup = {text_key(t): names[int(c)] for t, c in zip(seed_texts, seed_y)}  # right on every seed
    lookup.update({text_key(unl_texts[i]): "SPAM" for i in asked})
    return corpus, lookup, unasked


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_final_expert_learns_from_the_llms_labels_only_when_they_are_kept(multi_label):
    from lfagent.fit.crossfit import run_pipeline
    from lfagent.fit.expert import expert_proba
    from lfagent.fit.fold_fit import PipelineConfig

    config = PipelineConfig(mine_ngrams=False, mine_embeddings=False, join_weight=1.0)
    corpus, lookup, unasked = _separable_corpus(multi_label)
    spam = lambda result: expert_proba(result.labeler.expert, corpus.unl_emb[unasked], 2)[:, 1].mean()  # noqa: E731
    alone = run_pipeline(corpus, config)
    if multi_label:
        lfs = [_annotation({k: v for k, v in lookup.items() if v == c}, c, annotation_lf_name(c)) for c in ("HAM", "SPAM")]
    else:
        lfs = [_annotation(lookup)]
    taught = run_pipeline(corpus, config, extra=lfs)
    assert {lf.name for lf in lfs} <= {lf.name for lf in taught.labeler.lfs}  # kept: right on every seed
    assert spam(alone) < 0.5 < spam(taught)  # records near the ones it labelled, which no seed is near
    # ... at the seed-only expert's confidence on the unlabeled records, which the calibrator was fitted for
    conf = lambda state: np.maximum(*(lambda p: (p, 1 - p))(expert_proba(state, corpus.unl_emb, 2))).mean(0)  # noqa: E731
    assert np.allclose(conf(taught.labeler.expert), conf(alone.labeler.expert), atol=1e-3)
    # A liar's labels (wrong on every seed) are dropped, and the expert is the seeds' alone.
    flipped = {k: ("HAM" if v == "SPAM" else "SPAM") for k, v in lookup.items()}
    lied = run_pipeline(corpus, config, extra=[_annotation(flipped)] if not multi_label else
                        [_annotation({k: v for k, v in flipped.items() if v == c}, c, annotation_lf_name(c))
                         for c in ("HAM", "SPAM")])
    assert not {lf.name for lf in lied.labeler.lfs} & {lf.name for lf in lfs}
    assert lied.labeler.expert == alone.labeler.expert


def test_a_multi_label_task_is_annotated_with_label_sets_one_lf_per_class(tmp_path):
    from conftest import goemotions_task
    from evals.simulated.knowledge import build_knowledge
    from evals.simulated.persona import EXPERT
    from evals.simulated.server import SimulatedLLMServer
    from lfagent import Session

    rows = goemotions_rows()[:140]
    members = np.array([[c in r["label"] for c in GOEMOTIONS_CLASSES] for r in rows])
    texts = [r["text"] for r in rows]
    knowledge = build_knowledge(GOEMOTIONS_CLASSES, texts, members, record_texts=texts, record_members=members,
                                multi_label=True)
    task = goemotions_task(tmp_path / "ge", n_seeds=40, n_unlabeled=100)
    requests = []
    with SimulatedLLMServer(knowledge, EXPERT) as server, server.environment():
        original = server.reply
        server.reply = lambda body: (requests.append(body), original(body))[1]
        with Session(task, tmp_path / "run", llm=server.llm_spec, embed=False) as session:
            report = session.annotate(30)
            session.fit()
            status = {row["name"]: row["status"] for row in session.lfs}
    assert all("every class that applies" in body["messages"][-1]["content"] for body in _label_requests(requests))
    gold = {text_key(t): {c for c, m in zip(GOEMOTIONS_CLASSES, row) if m} for t, row in zip(texts, members)}
    given: dict[str, set[str]] = {}
    for lf in report.lfs:
        assert lf.kind == "lookup" and lf.name == annotation_lf_name(lf.label) and lf.label in GOEMOTIONS_CLASSES
        assert set(lf.lookup.values()) == {lf.label}
        for key in lf.lookup:
            given.setdefault(key, set()).add(lf.label)
    assert len(report.lfs) >= 3 and report.labelled + report.seeds_labelled >= len(given) > 40
    right = sum(given[key] == gold[key] for key in given)
    assert right / len(given) > 0.7  # the expert's label sets, 15% flipped on purpose
    assert report.seeds_labelled == 40 and report.seeds_right / report.seeds_labelled > 0.7
    assert any(status[lf.name] == "kept" for lf in report.lfs)


def test_the_final_fit_judges_llm_lfs_by_the_fine_tuned_expert():
    """Frozen vectors put a cluster of SPAM records beside the HAM seeds; the fine-tuned ones beside the SPAM
    seeds. A keyword LF voting HAM there agrees with the frozen model's mistake, not with the fine-tuned one."""
    from lfagent.fit.crossfit import run_pipeline
    from lfagent.fit.fold_fit import PipelineConfig

    corpus, _, _ = _separable_corpus()
    third = np.arange(80, 120)
    corpus.unl_texts = [t + " zzz" if i in third else t for i, t in enumerate(corpus.unl_texts)]
    frozen = corpus.unl_emb.copy()
    frozen[third] = np.eye(3, 8)[0] * 3.0 + np.random.default_rng(1).normal(0, 0.5, (len(third), 8))
    corpus.unl_emb = frozen
    corpus.expert_views.unl_emb = corpus.expert_views.unl_emb.copy()
    corpus.expert_views.unl_emb[third] = np.eye(3, 8)[1] * 3.0 + np.random.default_rng(2).normal(0, 0.5, (40, 8))
    lf = LabelingFunction(name="llm_kw_ham_zzz", kind="keywords", label="HAM", keywords=["zzz"],
                          provenance=Provenance(source="llm:keywords"))
    result = run_pipeline(corpus, PipelineConfig(mine_ngrams=False, mine_embeddings=False, join_weight=1.0), extra=[lf])
    assert all(lf.name in kept for kept in result.fold_kept)  # the frozen model, within cross-fitting, agrees
    assert lf.name not in {x.name for x in result.labeler.lfs}
    assert result.final.reason(lf.name).startswith("disagrees with the current model")


def test_a_multi_label_run_measures_the_llms_label_sets_on_the_seeds_it_labelled():
    """An LLM asked about 80% of the records and one keyword: every fit's label model (each fold's on its training
    seeds, the final one on all) measures the LLM on the seeds, so its "labelled without class a" is read as the
    strong evidence it is (fit/multilabel.py)."""
    from lfagent.fit.corpus import Corpus
    from lfagent.fit.crossfit import run_pipeline
    from lfagent.fit.fold_fit import PipelineConfig
    from lfagent.fit.multilabel import binary_view

    names = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    n_seeds, n = 100, 3000
    Y = np.eye(3, dtype=int)[rng.choice(3, n_seeds + n, p=[0.15, 0.35, 0.5])]
    Y[rng.random(n_seeds + n) < 0.1, 1] = 1
    said = (rng.random(Y.shape) < np.where(Y == 1, 0.9, 0.03)).astype(int)
    none = said.sum(axis=1) == 0
    said[none, rng.integers(0, 3, len(Y))[none]] = 1
    texts = [f"record {i}" + (" wow" if rng.random() < (0.2 if Y[i, 0] else 0.02) else "") for i in range(len(Y))]
    asked = np.r_[np.ones(n_seeds, bool), rng.random(n) < 0.8]  # it labels every seed, most records
    lfs = [_annotation({text_key(t): c for t, s, a in zip(texts, said, asked) if a and s[j]}, c,
                       annotation_lf_name(c)) for j, c in enumerate(names)]
    lfs.append(LabelingFunction(name="kw_a_wow", kind="keywords", label="a", keywords=["wow"]))
    corpus = Corpus(class_names=names, multi_label=True, seed_texts=texts[:n_seeds], seed_y=Y[:n_seeds],
                    unl_texts=texts[n_seeds:])
    result = run_pipeline(corpus, PipelineConfig(mine_ngrams=False, mine_embeddings=False, fallback="prior"),
                          extra=lfs)
    kept = [lf.name for lf in result.labeler.lfs]
    assert set(kept) == {lf.name for lf in lfs}
    L = apply_lfs(result.labeler.lfs, texts[n_seeds:], names).L
    unl, said_unl, asked_unl = Y[n_seeds:], said[n_seeds:], asked[n_seeds:]
    no = asked_unl & (said_unl[:, 0] == 0) & (L[:, kept.index("kw_a_wow")] == -1)
    assert unl[no, 0].mean() < 0.03
    model = result.labeler.fitted_label_model()
    assert model.predict_proba(L)[no, 0].mean() < 0.05  # 0.16 before the seeds counted
    sets = {j: names.index(lf.label) for j, lf in enumerate(result.labeler.lfs)
            if lf.provenance.source == ANNOTATION_SOURCE}
    table = model.models_[0].get_conditional_probs()
    column = kept.index(annotation_lf_name("a"))
    assert binary_view(L, 0, label_sets=sets)[:, column].max() == 1
    assert table[column, 0, 2] == pytest.approx(table[column, 1, 2])  # asked or not says nothing of the class
