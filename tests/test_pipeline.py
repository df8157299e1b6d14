"""The core path end to end without an LLM, on real data: run, silver output, honesty of reported figures."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLE_TASK, GOEMOTIONS_CLASSES, SHARED_DATA, goemotions_task
from lfagent import Session
from lfagent.fit.crossfit import run_pipeline
from lfagent.fit.corpus import Corpus
from lfagent.fit.expert import join_experts
from lfagent.fit.fold_fit import PipelineConfig


def small_copy(tmp_path, n_unlabeled=300, shuffle_labels=False):
    src = EXAMPLE_TASK.parent
    folder = tmp_path / "task"
    folder.mkdir()
    seeds = [json.loads(line) for line in (src / "seeds.jsonl").read_text().splitlines()]
    if shuffle_labels:
        labels = [s["label"] for s in seeds]
        np.random.default_rng(0).shuffle(labels)
        seeds = [{**s, "label": label} for s, label in zip(seeds, labels)]
    (folder / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    (folder / "unlabeled.jsonl").write_text(
        "\n".join((src / "unlabeled.jsonl").read_text().splitlines()[:n_unlabeled]) + "\n")
    (folder / "test.jsonl").write_text("\n".join((src / "test.jsonl").read_text().splitlines()[:200]) + "\n")
    (folder / "task.yaml").write_text((src / "task.yaml").read_text())
    return folder / "task.yaml"


@pytest.mark.slow
def test_run_cli_writes_silver_and_tables(tmp_path):
    task = small_copy(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", str(task), "--out", str(out), "--llm", "none"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""  # piped: no progress lines
    rows = [json.loads(line) for line in (out / "silver.jsonl").read_text().splitlines()]
    unlabeled_ids = [json.loads(line)["id"] for line in (task.parent / "unlabeled.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == unlabeled_ids
    for row in rows:
        assert set(row) == {"id", "label", "probs", "covered"}
        assert set(row["probs"]) == {"HAM", "SPAM"} and abs(sum(row["probs"].values()) - 1) < 1e-3
        assert row["label"] == max(row["probs"], key=row["probs"].get)
    assert any(r["covered"] for r in rows) and any(not r["covered"] for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.75 < metrics["cross_fitted_seeds"]["seed_accuracy"] <= 1
    assert metrics["test"]["accuracy"] > 0.8
    kept = json.loads((out / "lfs.json").read_text())
    assert kept and all({"lf", "stats"} <= set(k) for k in kept)
    assert "emp_acc" in (out / "lfs.txt").read_text()
    assert json.loads((out / "model.json").read_text())["lf_set_hash"]


@pytest.mark.slow
def test_reported_accuracy_is_not_fitted_on_the_seeds_it_measures(tmp_path):
    """With shuffled seed labels there is nothing to learn: an honest cross-fitted figure stays near chance."""
    with Session(small_copy(tmp_path, shuffle_labels=True), tmp_path / "run", llm="none") as session:
        metrics = session.fit()
    assert metrics.seed_accuracy < 0.68, metrics
    assert metrics.seed_accuracy_low < 0.54 < metrics.seed_accuracy_high or metrics.seed_accuracy < 0.54


@pytest.mark.slow
def test_keep_and_drop_persist_across_sessions(tmp_path):
    task = small_copy(tmp_path)
    with Session(task, tmp_path / "run", llm="none", embed=False) as session:
        session.fit()
        kept = [row["name"] for row in session.lfs if row["status"] == "kept"]
        session.drop(kept[0])
        session.fit()
        assert kept[0] not in {lf.name for lf in session.result.final.lfs}
    with Session(task, tmp_path / "run", llm="none", embed=False) as again:
        again.fit()
        row = next(r for r in again.lfs if r["name"] == kept[0])
        assert row["pinned"] == "drop" and row["status"] == "dropped"
        assert kept[0] not in {lf.name for lf in again.result.final.lfs}


def test_a_fit_with_no_candidate_lfs_labels_every_record_from_the_fallback(tmp_path):
    # No miner and no LLM: nothing to select. The fit must still finish (it used to fail counting the
    # votes of zero LFs) and give every record the seeds' class prior.
    task = small_copy(tmp_path, n_unlabeled=50)
    config = PipelineConfig(mine_ngrams=False, mine_embeddings=False)
    with Session(task, tmp_path / "run", llm="none", embed=False, config=config) as session:
        metrics = session.fit()
        assert session.result.final.lfs == [] and metrics.n_kept == 0
        silver = [json.loads(line) for line in session.write_outputs().read_text().splitlines()]
    assert len(silver) == 50
    assert len({tuple(round(p, 6) for p in row["probs"].values()) for row in silver}) == 1


def test_bad_task_gives_one_clear_line(tmp_path):
    bad = tmp_path / "task.yaml"
    bad.write_text("name: x\nclasses: [A, B]\nseeds: missing.jsonl\nunlabeled: missing.jsonl\n")
    proc = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", str(bad), "--out", str(tmp_path / "r"),
                           "--llm", "none"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "missing.jsonl" in proc.stderr and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_multi_label_goemotions_subset(tmp_path):
    task = goemotions_task(tmp_path / "ge", n_seeds=120, n_unlabeled=300)
    wanted = GOEMOTIONS_CLASSES
    with Session(task, tmp_path / "run", llm="none") as session:
        metrics = session.fit()
        session.write_outputs()
    silver = [json.loads(line) for line in (tmp_path / "run" / "silver.jsonl").read_text().splitlines()]
    assert len(silver) == 300 and all("labels" in r and set(r["probs"]) == set(wanted) for r in silver)
    assert all(all(0 <= p <= 1 for p in r["probs"].values()) for r in silver)
    assert metrics.seed_accuracy > 0.3  # micro F1, cross-fitted


@pytest.mark.slow
def test_wrench_youtube_beats_chance_by_far():
    from lfagent.data.readers import iter_rows
    from lfagent.data.embed import Embedder

    train = [r for _, r in iter_rows(SHARED_DATA / "wrench-youtube" / "train.json")]
    test = [r for _, r in iter_rows(SHARED_DATA / "wrench-youtube" / "test.json")]
    names = ["HAM", "SPAM"]
    idx = np.random.default_rng(0).choice(len(train), 100, replace=False)
    embed = Embedder()
    seed_texts = [train[i]["text"] for i in idx]
    corpus = Corpus(class_names=names, multi_label=False, seed_texts=seed_texts,
                    seed_y=np.array([names.index(train[i]["label"]) for i in idx]),
                    unl_texts=[r["text"] for r in test], seed_emb=embed.encode(seed_texts),
                    unl_emb=embed.encode([r["text"] for r in test]))
    result = run_pipeline(corpus, PipelineConfig(seed=0))
    y = np.array([names.index(r["label"]) for r in test])
    assert (result.probs.argmax(1) == y).mean() > 0.85
    assert np.allclose(result.probs.sum(1), 1)


def test_combining_experts_keeps_distributions():
    rng = np.random.default_rng(0)
    lm, emb = rng.dirichlet([1, 1, 1], 50), rng.dirichlet([1, 1, 1], 50)
    covered = rng.random(50) < 0.5
    out = join_experts(lm, emb, covered, False, "product")
    assert np.allclose(out.sum(1), 1) and np.allclose(out[~covered], emb[~covered])
    # Agreeing experts sharpen: where both put most mass on one class, the product puts even more.
    agree = covered & (lm.argmax(1) == emb.argmax(1))
    assert (out[agree].max(1) >= np.minimum(lm[agree].max(1), emb[agree].max(1)) - 1e-9).all()


def test_llm_concept_thresholds_are_refitted_on_each_folds_training_seeds():
    from lfagent.lf import LabelingFunction, Provenance
    from lfagent.fit.fold_fit import candidate_lfs
    from lfagent.propose.llm_concepts import fit_concept_threshold

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 30)
    emb = rng.normal(size=(60, 8)) + np.where(y[:, None] == 1, 1.0, 0.0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    proto = emb[y == 1].mean(axis=0, keepdims=True)
    proto /= np.linalg.norm(proto)
    corpus = Corpus(class_names=["a", "b"], multi_label=False, seed_texts=["x"] * 60, seed_y=y,
                    unl_texts=["x"] * 5, seed_emb=emb, unl_emb=emb[:5])
    full, _ = fit_concept_threshold(proto, emb, y == 1)
    lf = LabelingFunction(name="llm_concept_b", kind="embedding", label="b", prototypes=proto.tolist(),
                          threshold=full, provenance=Provenance(source="llm:concepts", round=1))
    config = PipelineConfig(mine_ngrams=False, mine_embeddings=False)
    train = np.arange(0, 40)
    (fold_lf,) = candidate_lfs(corpus, train, config, [lf])
    expected, _ = fit_concept_threshold(proto, emb[train], y[train] == 1)
    assert expected != full and fold_lf.threshold == expected and fold_lf.name == lf.name
    (final_lf,) = candidate_lfs(corpus, np.arange(60), config, [lf])
    assert final_lf.threshold == full
    other = lf.model_copy(update={"provenance": Provenance(source="user")})
    assert candidate_lfs(corpus, train, config, [other])[0].threshold == full  # only LLM concepts move


def test_llm_lfs_abstain_on_the_seeds_their_prompt_showed():
    from lfagent.lf import LabelingFunction, Provenance, text_key
    from lfagent.fit.corpus import VoteCache

    seeds = ["buy cheap pills now", "nice song", "buy it today", "did you buy the album"]
    corpus = Corpus(class_names=["HAM", "SPAM"], multi_label=False, seed_texts=seeds,
                    seed_y=np.array([1, 0, 1, 0]), unl_texts=["buy cheap pills now", "hello"])
    keys = [text_key("buy  cheap pills now"), text_key("did you buy the album")]
    shown = LabelingFunction(name="llm_kw_spam_buy", kind="keywords", label="SPAM", keywords=["buy"],
                             provenance=Provenance(source="llm:keywords", shown=keys))
    mined = shown.model_copy(update={"name": "kw_spam_buy", "provenance": Provenance(source="mined:ngram")})
    L_seed, L_unl = VoteCache(corpus).matrices([shown, mined])
    # The shown seed it gets right no longer vouches for it; the shown seed it gets wrong still counts.
    assert L_seed[:, 0].tolist() == [-1, -1, 1, 1]
    assert L_seed[:, 1].tolist() == [1, -1, 1, 1]
    assert L_unl[:, 0].tolist() == [1, -1]  # on unlabeled records it votes as written


TREC_CLASSES = {"LOC": "asks for a place", "ABBR": "asks for an abbreviation or what one stands for",
                "HUM": "asks for a person or group", "NUM": "asks for a number, date, count or amount"}


def test_vouching_by_meaning_with_the_real_embedder():
    from lfagent.data.embed import Embedder
    from lfagent.scoring.meaning import vouched_by_meaning

    embed = Embedder().encode
    names = list(TREC_CLASSES)
    class_emb = embed([f"{c}: {d}" for c, d in TREC_CLASSES.items()])
    where = ["Where is the Eiffel Tower?", "Where was Mozart born?", "Where do penguins live?"]
    assert vouched_by_meaning(embed(["where"])[0], embed(where), class_emb, names.index("LOC"), 0.25, 12)
    # A word the LLM copied from an ABBR question that means nothing of the kind, on ordinary questions.
    questions = ["What is the tallest mountain?", "Who is the president of France?",
                 "How many legs does a spider have?"]
    assert not vouched_by_meaning(embed(["is"])[0], embed(questions), class_emb, names.index("ABBR"), 0.25, 12)
    # The right meaning but too many matches for the class's share, or too few matches to judge.
    assert not vouched_by_meaning(embed(["where"])[0], embed(where), class_emb, names.index("LOC"), 0.1, 12)
    assert not vouched_by_meaning(embed(["where"])[0], embed(where[:2]), class_emb, names.index("LOC"), 0.25, 12)


def test_an_llm_keyword_with_thin_seed_evidence_is_kept_only_when_vouched_for():
    from lfagent.data.embed import Embedder
    from lfagent.lf import LabelingFunction, Provenance, text_key
    from lfagent.fit.fold_fit import fit_once

    embed = Embedder().encode
    seeds = (["Where is Berlin?", "What city hosts the Louvre?", "In what country is Lima?"]
             + ["What does NASA stand for?", "What is the abbreviation for kilogram?"]
             + [f"Who wrote book number {i}?" for i in range(6)]
             + [f"How many people live in town {i}?" for i in range(6)])
    y = np.array([0] * 3 + [1] * 2 + [2] * 6 + [3] * 6)
    unl = (["Where is the Eiffel Tower?", "Where was Mozart born?", "Where do penguins live?", "Where is Lima?"]
           + [f"Who painted picture {i}?" for i in range(8)]
           + [f"How many moons does planet {i} have?" for i in range(8)])
    kw = LabelingFunction(name="llm_kw_loc_where", kind="keywords", label="LOC", keywords=["where"],
                          provenance=Provenance(source="llm:keywords", round=1, shown=[text_key(seeds[0])]))
    corpus = Corpus(class_names=list(TREC_CLASSES), multi_label=False, seed_texts=seeds, seed_y=y,
                    unl_texts=unl, seed_emb=embed(seeds), unl_emb=embed(unl), embed=embed)
    config = PipelineConfig(mine_ngrams=False, mine_embeddings=False)
    everything = np.arange(len(seeds))
    unvouched = fit_once(corpus, everything, config, extra=[kw])
    assert unvouched.lfs == [] and unvouched.dropped[kw.name] == "no seed votes (needs >= 3)"
    corpus.class_emb = embed([f"{c}: {d}" for c, d in TREC_CLASSES.items()])
    vouched = fit_once(corpus, everything, config, extra=[kw])
    assert [lf.name for lf in vouched.lfs] == [kw.name] and vouched.vouched == {kw.name}
    assert vouched.reason(kw.name).startswith("vouched for by meaning") and unvouched.reason(kw.name).startswith("no")
    mined = kw.model_copy(update={"name": "kw_loc_where", "provenance": Provenance(source="mined:ngram")})
    assert fit_once(corpus, everything, config, extra=[mined]).lfs == []  # only the LLM's keywords are vouched for
