"""The fine-tuned expert inside a run: honest held-out vectors, one fine-tune per run, a clear error when its
encoder is missing. A few optimiser steps per fine-tune keep it to seconds; the recipe's quality is measured
in benchmarks/ and evals/, not here."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import example_subset
from lfagent import Session
from lfagent.errors import LFAgentError
from lfagent.fit import fewshot, fewshot_views
from lfagent.fit.fold_fit import PipelineConfig, fold_indices
from lfagent.generate import generate

pytestmark = pytest.mark.slow


def small_task(folder: Path, n_seeds: int = 40, n_unlabeled: int = 60) -> Path:
    return example_subset(folder, n_seeds=n_seeds, n_unlabeled=n_unlabeled)


CONFIG = PipelineConfig(expert="finetuned", fewshot_max_steps=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One fine-tuned run (fit twice, then reopened as --resume does), with a record of (texts trained on,
    encoder) for each fine-tune, in call order."""
    calls: list[tuple[list[str], object]] = []
    real = fewshot_views._fine_tune

    def spy(texts, y, multi_label, seed, options):
        encoder = real(texts, y, multi_label, seed, options)
        calls.append((list(texts), encoder))
        return encoder

    base = tmp_path_factory.mktemp("fewshot")
    task = small_task(base / "task")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LFAGENT_CACHE", str(base / "cache"))
        patch.setattr(fewshot_views, "_fine_tune", spy)
        with Session(task, base / "run", config=CONFIG) as session:
            session.fit()
            session.fit()  # an agent round's refit: reads the views, no new fine-tune
            session.write_outputs()
            out = {"task": task, "run_dir": base / "run", "texts": session.seeds.texts,
                   "views": session.corpus.expert_views, "labeler": session.result.labeler,
                   "probs": session.result.probs, "seed_y": session.corpus.seed_y}
        with Session(task, base / "run", config=CONFIG) as again:  # --resume: refits from the cached views
            again.fit()
        out["calls"] = list(calls)
        yield out


@pytest.fixture(autouse=True)
def _isolated_cache():  # overrides conftest's per-test cache: generate reads the run's cached vectors
    yield


def test_held_out_seeds_are_embedded_by_an_encoder_that_never_saw_them(run):
    trained, texts, views = run["calls"], run["texts"], run["views"]
    assert len(trained) == 3 and sorted(trained[2][0]) == sorted(texts)  # two groups, then every seed
    assert not set(trained[0][0]) & set(trained[1][0])
    by_encoder = [fewshot.encode(encoder, texts) for _, encoder in trained]
    for f, rows in enumerate(fold_indices(run["seed_y"], CONFIG.folds, CONFIG.seed, False)):
        # Which fine-tune made this fold's vectors? Exactly one, and not one that trained on the fold.
        makers = [i for i, emb in enumerate(by_encoder) if np.allclose(emb, views.heldout[f], atol=1e-5)]
        assert len(makers) == 1 and makers[0] != 2, f"fold {f}: vectors from fine-tunes {makers}"
        held = {texts[i] for i in rows}
        assert not held & set(trained[makers[0]][0]), f"fold {f}'s seeds were in its encoder's training set"
    assert run["labeler"].expert_embedder == views.name and views.name.startswith("finetuned-")


def test_a_run_fine_tunes_once_and_generate_reproduces_its_silver(run, tmp_path):
    assert len(run["calls"]) == 3  # two fits and a reopened session later
    out = tmp_path / "out.jsonl"
    generate(run["run_dir"], [str(run["task"].parent / "unlabeled.jsonl")], out)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    names = list(got[0]["probs"])
    assert np.abs(np.array([[r["probs"][c] for c in names] for r in got]) - run["probs"]).max() <= 1e-9


def test_another_run_on_the_same_seeds_reuses_the_shared_fine_tune(run, tmp_path, monkeypatch):
    trained = []
    monkeypatch.setenv("LFAGENT_CACHE", str(run["run_dir"].parent / "cache"))  # the fixture's cache
    monkeypatch.setattr(fewshot_views, "_fine_tune", lambda *args: trained.append(args))
    with Session(run["task"], tmp_path / "second", config=CONFIG) as session:
        session.fit()
        probs = session.result.probs
    assert trained == []
    assert np.abs(probs - run["probs"]).max() <= 1e-9
    assert (tmp_path / "second" / "expert" / "encoder" / "modules.json").is_file()  # generate needs its own copy
    # Other seeds are other views: the shared cache does not answer for them.
    def refuse(*args):
        raise RuntimeError("fine-tune asked for")

    monkeypatch.setattr(fewshot_views, "_fine_tune", refuse)
    with Session(small_task(tmp_path / "other", n_seeds=39), tmp_path / "third", config=CONFIG) as session:
        with pytest.raises(RuntimeError, match="fine-tune asked for"):
            session.fit()


def test_a_run_copied_without_its_encoder_says_what_is_missing(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["run_dir"], copy)
    shutil.rmtree(copy / "expert" / "encoder")
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "n1", "text": "a text no run has encoded, so the encoder must load"}) + "\n")
    with pytest.raises(LFAgentError, match="expert/ folder"):
        generate(copy, [str(new)], tmp_path / "out.jsonl")


def test_frozen_expert_on_request_fine_tunes_nothing(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(fewshot_views, "_fine_tune", lambda *args: trained.append(args))
    task = small_task(tmp_path / "task")
    with Session(task, tmp_path / "run", config=PipelineConfig(expert="frozen")) as session:
        session.fit()
        assert session.result.labeler.expert_embedder is None and session.result.labeler.expert is not None
    assert trained == [] and not (tmp_path / "run" / "expert").exists()



def test_a_multi_label_run_with_the_fine_tuned_expert_decides_at_even_odds(tmp_path):
    """Cut-offs tuned for F1 on the group encoders' held-out scores do not carry over to the final encoder
    (evals/results/multilabel-decisions/): silver `labels` are where the joined probability reaches 0.5."""
    from conftest import goemotions_task
    from lfagent.fit.calibrator import even_odds_thresholds

    task = goemotions_task(tmp_path / "ge", n_seeds=40, n_unlabeled=60)
    with Session(task, tmp_path / "run", config=CONFIG) as session:
        session.fit()
        session.write_outputs()
        labeler, result = session.result.labeler, session.result
        _, L_unl = result.votes.matrices(labeler.lfs)
        raw, _ = labeler.raw_proba(L_unl, session.corpus.unl_emb, session.corpus.expert_views.unl_emb)
    assert labeler.expert_embedder.startswith("finetuned-")
    assert labeler.calibrator.thresholds == even_odds_thresholds(labeler.calibrator)
    names = labeler.class_names
    silver = [json.loads(line) for line in (tmp_path / "run" / "silver.jsonl").read_text().splitlines()]
    decided = np.array([[c in row["labels"] for c in names] for row in silver])
    assert (decided == (raw >= 0.5)).mean() > 0.99  # a probability exactly at a cut may round either way

# ---- lfagent train: the end model fine-tuned on the silver labels ----------------------------------------

def test_train_writes_a_model_that_generate_and_python_label_with(run, tmp_path):
    from lfagent.cli import main as cli_main
    from lfagent.fit.end_model import EndModel

    out = tmp_path / "end"
    assert cli_main(["train", str(run["run_dir"]), "--out", str(out), "--steps", "2", "--per-class", "4",
                     "--quiet"]) == 0
    unlabeled = run["task"].parent / "unlabeled.jsonl"
    summary = generate(out, [str(unlabeled)], tmp_path / "gen.jsonl")
    assert summary.card is None and not (tmp_path / "gen.card.md").exists()  # no run figures to report
    got = [json.loads(line) for line in (tmp_path / "gen.jsonl").read_text().splitlines()]
    names = list(got[0]["probs"])
    texts = [json.loads(line)["text"] for line in unlabeled.read_text().splitlines()]
    model = EndModel.load(out)
    probs = model.predict_proba(texts)
    assert np.allclose([[r["probs"][c] for c in names] for r in got], probs, atol=1e-6)
    assert model.predict(texts) == [r["label"] for r in got]
    assert not any(r["covered"] for r in got)  # no LF: every label is the end model's own
    # It learned the silver labels: it agrees with the run on most records (a two-step fine-tune and a
    # head trained on those very labels; a broken head or misaligned rows would sit near chance).
    silver = [json.loads(line)["label"] for line in (run["run_dir"] / "silver.jsonl").read_text().splitlines()]
    assert np.mean([a == b for a, b in zip(model.predict(texts), silver)]) >= 0.8
    assert cli_main(["train", str(run["run_dir"]), "--out", str(out), "--quiet"]) == 2  # no silent overwrite


def test_train_fine_tunes_in_the_precision_asked_and_says_which(run, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    from lfagent.fit.end_model import train_end_model
    from lfagent.fit.fewshot import resolve_precision

    weights = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        monkeypatch.setenv("LFAGENT_PRECISION", precision)  # how a user picks it, as for the run
        assert train_end_model(run["run_dir"], out, steps=2, per_class=4).precision == precision
        assert json.loads((out / "train.json").read_text())["precision"] == precision
        weights[precision] = load_file(out / "expert" / "encoder" / "model.safetensors")
    # Same seed, same pairs: only the arithmetic differs, so the fine-tuned weights do too.
    assert any(not np.array_equal(weights["fp32"][k], weights["bf16"][k]) for k in weights["fp32"])
    assert all(w.dtype == np.float32 for w in weights["bf16"].values())
    # Unset, it is the run's default: auto. Caught where train hands it to the fine-tune (a third train
    # would only repeat one of the two above).
    monkeypatch.delenv("LFAGENT_PRECISION")
    asked = []

    def fine_tune(*args, precision, **kwargs):
        asked.append(precision)
        raise KeyboardInterrupt

    monkeypatch.setattr("lfagent.fit.fewshot.fine_tune_encoder", fine_tune)
    with pytest.raises(KeyboardInterrupt):
        train_end_model(run["run_dir"], tmp_path / "auto", steps=1, per_class=2)
    assert asked == [resolve_precision("auto")]


def test_train_refuses_a_run_without_silver_labels_naming_the_file(run, tmp_path, capsys):
    from lfagent.cli import main as cli_main

    copy = tmp_path / "run"
    shutil.copytree(run["run_dir"], copy)
    (copy / "silver.jsonl").write_text('{"id": "x", "probs": {"HAM": 1.0}}\n')
    assert cli_main(["train", str(copy), "--out", str(tmp_path / "end"), "--quiet"]) == 2
    assert "silver.jsonl:1" in capsys.readouterr().err


def test_confident_rows_and_the_weighted_head():
    from lfagent.fit.end_model import confident_rows, fit_weighted_head
    from lfagent.fit.expert import expert_proba

    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01]])
    assert confident_rows(probs, False, 1).tolist() == [2, 4]  # the surest row of each class
    assert confident_rows(probs, False, 5).tolist() == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.normal(1, 0.3, (20, 4)), rng.normal(-1, 0.3, (20, 4))])
    soft = np.vstack([np.tile([0.9, 0.1], (20, 1)), np.tile([0.2, 0.8], (20, 1))])
    head = fit_weighted_head(emb, soft, False, seed=0)
    assert (expert_proba(head, emb, 2).argmax(axis=1) == soft.argmax(axis=1)).all()


def test_train_flags_default_to_the_end_models_defaults():
    from lfagent.cli import train_cmd
    from lfagent.fit import end_model

    assert (train_cmd.END_MODEL_STEPS, train_cmd.PER_CLASS) == (end_model.END_MODEL_STEPS, end_model.PER_CLASS)


def test_held_out_seeds_are_read_in_the_space_their_fold_expert_learned_in():
    # The frozen vectors are noise, the held-out (group encoder) vectors separate the classes: a fold's expert
    # learns on the latter and must predict its held-out seeds from them too.
    from lfagent.fit.corpus import Corpus
    from lfagent.fit.crossfit import run_pipeline
    from lfagent.fit.fewshot_views import ExpertViews
    from lfagent.fit.fold_fit import PipelineConfig

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    clean = np.eye(3, 8)[y] * 3.0 + rng.normal(0, 0.3, (90, 8))
    corpus = Corpus(class_names=["a", "b", "c"], multi_label=False, seed_texts=[f"seed {i}" for i in range(90)],
                    seed_y=y, unl_texts=["record"], seed_emb=rng.normal(0, 1, (90, 8)), unl_emb=np.zeros((1, 8)))
    corpus.expert_views = ExpertViews(name="finetuned-test", model_dir=Path("unused"), seed_emb=clean,
                                      unl_emb=np.zeros((1, 8)), heldout=[clean] * 5)
    result = run_pipeline(corpus, PipelineConfig(mine_ngrams=False, mine_embeddings=False))
    assert result.metrics.seed_accuracy >= 0.95
