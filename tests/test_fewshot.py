"""The few-shot expert (lfagent/fit/fewshot.py) on tiny data: a handful of optimiser steps each."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("setfit")

from lfagent.errors import InputError  # noqa: E402
from lfagent.fit.fewshot import FewShotExpert, cross_fitted_proba, fold_ids  # noqa: E402

pytestmark = pytest.mark.slow  # each fit loads and fine-tunes MiniLM: seconds to tens of seconds

SPORT = ["the team won the match", "a great goal in the final minute", "the striker scored twice",
         "the coach praised the defence", "fans cheered the home side", "the league title race is close"]
FOOD = ["this soup needs more salt", "bake the bread for an hour", "fresh basil makes the sauce",
        "the recipe calls for two eggs", "fry the onions until golden", "a spoon of sugar in the dough"]
TECH = ["the laptop battery drains fast", "update the phone software", "the new chip is faster",
        "restart the router to fix wifi", "the app crashes on launch", "install the graphics driver"]
TEXTS = SPORT + FOOD + TECH
Y = np.repeat([0, 1, 2], 6)
STEPS = 4


@pytest.fixture(scope="module")
def expert():
    return FewShotExpert(k=3, seed=0, max_steps=STEPS).fit(TEXTS, Y)


def test_shapes_and_normalisation(expert):
    emb = expert.encode(TEXTS[:5])
    assert emb.shape == (5, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    probs = expert.predict_proba(["the goalkeeper saved a penalty", "boil the pasta"])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    # texts and their embeddings give the same answer
    np.testing.assert_allclose(expert.predict_proba(emb), expert.predict_proba(TEXTS[:5]), atol=1e-6)
    # the head fits its own training seeds (an easy three-topic task)
    assert (expert.predict_proba(TEXTS).argmax(axis=1) == Y).mean() >= 0.9


def test_head_matches_sklearn(expert):
    from sklearn.linear_model import LogisticRegression

    emb = expert.encode(TEXTS)
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=0).fit(emb, Y)
    np.testing.assert_allclose(expert.predict_proba(emb), ref.predict_proba(emb), atol=1e-6)


def test_save_load_identical(expert, tmp_path):
    expert.save(tmp_path / "fs")
    again = FewShotExpert.load(tmp_path / "fs")
    probe = ["the referee blew the whistle", "knead the dough", "charge the phone"]
    np.testing.assert_allclose(again.predict_proba(probe), expert.predict_proba(probe), atol=1e-6)
    assert not list((tmp_path / "fs").rglob("*.pkl"))


def test_same_seed_same_output(expert):
    other = FewShotExpert(k=3, seed=0, max_steps=STEPS).fit(TEXTS, Y)
    probe = ["a late winner in extra time", "slice the tomatoes"]
    np.testing.assert_allclose(other.predict_proba(probe), expert.predict_proba(probe), atol=1e-6)


def test_multi_label():
    y = np.zeros((len(TEXTS), 3), int)
    y[np.arange(len(TEXTS)), Y] = 1
    y[:, 2] = 0  # a class never on: its head is the constant 0
    model = FewShotExpert(k=3, multi_label=True, seed=1, max_steps=2).fit(TEXTS, y)
    probs = model.predict_proba(TEXTS[:4])
    assert probs.shape == (4, 3) and np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_array_equal(probs[:, 2], 0.0)


def test_shuffled_labels_give_chance_crossfit():
    """With labels unrelated to the texts the honest figure stays near chance: no training seed leaks in."""
    rng = np.random.default_rng(3)
    texts = TEXTS + [f"{t}, again" for t in TEXTS]  # distinct texts, so shuffled labels can be memorised
    y = rng.permutation(np.repeat([0, 1], len(texts) // 2))
    probs = cross_fitted_proba(texts, y, k=2, folds=2, seed=0, max_steps=STEPS)
    acc = (probs.argmax(axis=1) == y).mean()
    # 36 rows: chance is 0.5 (sd ~0.08); an expert scoring seeds it trained on would be near 1.0
    assert acc <= 0.75
    # while an expert scored on its own training rows does fit those shuffled labels (weak regularisation)
    fitted = FewShotExpert(k=2, seed=0, C=100.0, max_steps=STEPS).fit(texts, y)
    assert (fitted.predict_proba(texts).argmax(axis=1) == y).mean() >= 0.85


def test_fold_ids_stratified():
    y = np.repeat([0, 1, 2], [7, 2, 1])
    fold = fold_ids(y, 2, seed=0)
    for c in (0, 1):
        assert set(fold[y == c]) == {0, 1}
    assert abs((fold == 0).sum() - (fold == 1).sum()) <= 1


def test_bad_input_is_named():
    with pytest.raises(InputError, match="3 texts but 2 labels"):
        FewShotExpert(k=2).fit(["a", "b", "c"], [0, 1])
    with pytest.raises(InputError, match=r"class indices in \[0, 2\)"):
        FewShotExpert(k=2).fit(["a", "b", "c"], [0, 1, 5])
    with pytest.raises(InputError, match="not a saved few-shot expert"):
        FewShotExpert.load("/nonexistent/fs")


def test_a_step_cap_above_the_recipe_never_lengthens_it():
    from lfagent.fit.fewshot import _step_cap

    # 100 seeds, 10 pair iterations: 2000 pairs, 125 steps of 16. transformers would loop past the pairs
    # to reach a larger max_steps, so the cap must fall back to the recipe's own length.
    assert _step_cap(500, 100, 10, 16, 1) == -1
    assert _step_cap(125, 100, 10, 16, 1) == -1
    assert _step_cap(124, 100, 10, 16, 1) == 124
    assert _step_cap(None, 100, 10, 16, 1) == -1


def test_length_grouped_batches_cover_every_pair_once_in_similar_lengths():
    from lfagent.fit.fewshot import grouped_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, size=1000).tolist()
    batches = grouped_batches(lengths, 16, False, seed=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    # Padding cost: sum over batches of (batch size x longest), against random batches of the same pairs.
    cost = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    order = rng.permutation(1000).tolist()
    random_cost = sum(16 * max(lengths[i] for i in order[s:s + 16]) for s in range(0, 1000, 16))
    assert cost < 0.7 * random_cost
    assert grouped_batches(lengths, 16, False, seed=3) == batches  # deterministic for a seed
    assert grouped_batches(lengths, 16, False, seed=4) != batches
    assert all(len(b) == 16 for b in grouped_batches(lengths, 16, True, seed=3))


def test_each_optimiser_step_is_reported():
    from lfagent.fit.fewshot import fine_tune_encoder

    steps = []
    fine_tune_encoder(TEXTS, Y, multi_label=False, seed=0, max_steps=3, on_step=lambda: steps.append(1))
    assert len(steps) == 3


def test_the_triplet_loss_takes_a_batch_of_texts_a_step_and_separates_the_classes():
    from lfagent.fit.fewshot import encode, fine_tune_encoder, step_count

    options = {"loss": "triplet", "epochs": 2, "batch_size": 6, "learning_rate": 1e-4}
    assert step_count(len(TEXTS), options) == 6  # 18 texts, 6 a step, 2 passes
    steps = []
    encoder = fine_tune_encoder(TEXTS, Y, multi_label=False, seed=0, on_step=lambda: steps.append(1), **options)
    assert len(steps) == 6
    emb = encode(encoder, TEXTS)
    assert np.isfinite(emb).all()
    sim = emb @ emb.T
    same = Y[:, None] == Y[None, :]
    assert sim[same & ~np.eye(len(Y), dtype=bool)].mean() > sim[~same].mean() + 0.1


def test_a_batch_loss_on_a_multi_label_task_or_an_unknown_loss_is_refused_before_loading():
    from lfagent.fit import fewshot

    def no_model(*_a, **_k):
        raise AssertionError("loaded the encoder for a fine-tune it was going to refuse")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fewshot, "load_encoder", no_model)
        with pytest.raises(InputError, match="multi-label tasks use cosine"):
            fewshot.fine_tune_encoder(TEXTS, np.eye(3, dtype=int)[Y], multi_label=True, seed=0, loss="triplet")
        with pytest.raises(InputError, match="unknown loss 'hinge'"):
            fewshot.fine_tune_encoder(TEXTS, Y, multi_label=False, seed=0, loss="hinge")


def test_precision_auto_is_bf16_only_where_the_cpu_has_it_natively():
    from lfagent.fit.fewshot import resolve_precision

    assert resolve_precision("auto", {"avx2", "avx512f", "avx512_bf16"}) == "bf16"
    assert resolve_precision("auto", {"amx_tile", "amx_bf16"}) == "bf16"
    assert resolve_precision("auto", {"avx2", "avx512f"}) == "fp32"  # bf16 would be emulated: slower
    assert resolve_precision("fp32", {"avx512_bf16"}) == "fp32"
    with pytest.raises(InputError, match="precision must be"):
        resolve_precision("fp16")


def test_a_bf16_fine_tune_trains_in_mixed_precision_and_returns_a_float32_encoder():
    import torch

    from lfagent.fit.fewshot import encode, fine_tune_encoder

    runs = {p: fine_tune_encoder(TEXTS, Y, multi_label=False, seed=0, max_steps=2, precision=p)
            for p in ("fp32", "bf16")}
    fp32, bf16 = (torch.cat([w.detach().flatten() for w in runs[p].parameters()]) for p in ("fp32", "bf16"))
    assert fp32.dtype == bf16.dtype == torch.float32
    # Same seed, same pairs: only the arithmetic differs, so the weights differ a little, not a lot.
    assert 0 < float((fp32 - bf16).abs().max()) < 1e-2
    emb = encode(runs["bf16"], TEXTS)
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
    with pytest.raises(InputError, match="precision must be"):
        fine_tune_encoder(TEXTS, Y, multi_label=False, seed=0, max_steps=1, precision="half")


def test_loading_and_saving_an_encoder_draw_no_bar_and_warn_nothing(tmp_path, capfd):
    import warnings

    from lfagent.fit.fewshot import load_encoder, save_encoder

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Cannot enable progress bars" was a UserWarning
        save_encoder(load_encoder(), tmp_path / "enc")
        load_encoder(tmp_path / "enc")
    assert "Loading weights" not in capfd.readouterr().err


def test_lfagent_precision_sets_the_default_and_a_bad_value_is_named(monkeypatch):
    from lfagent.fit.fold_fit import PipelineConfig

    monkeypatch.setenv("LFAGENT_PRECISION", "fp32")
    assert PipelineConfig().fewshot_precision == "fp32"
    monkeypatch.setenv("LFAGENT_PRECISION", "half")
    with pytest.raises(InputError, match=r"\$LFAGENT_PRECISION is 'half'"):
        PipelineConfig()


def test_the_precision_is_part_of_the_views_key_and_fp32_keys_are_those_from_before_it():
    from lfagent.fit.fewshot_views import views_key
    from lfagent.fit.fold_fit import PipelineConfig

    bf16 = PipelineConfig(fewshot_precision="bf16").fine_tune_options()["options"]
    fp32 = PipelineConfig(fewshot_precision="fp32").fine_tune_options()["options"]
    assert bf16["precision"] == "bf16" and "precision" not in fp32  # fp32 runs keep their cached fine-tunes
    assert views_key(TEXTS, Y, bf16) != views_key(TEXTS, Y, fp32)


def test_an_encoder_redone_under_the_same_name_never_reads_the_old_ones_cached_vectors(tmp_path, monkeypatch):
    import torch

    from lfagent.data import embedders
    from lfagent.data.embed import Embedder
    from lfagent.fit.fewshot import encode, load_encoder, save_encoder

    monkeypatch.setattr(embedders, "_loaded", {})
    first = load_encoder()
    save_encoder(first, tmp_path / "first")
    second = load_encoder()
    with torch.no_grad():  # another fine-tune's weights, as a changed recipe would give under the same key
        for weight in second.parameters():
            weight.mul_(1 + 0.1 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    save_encoder(second, tmp_path / "second")
    name, db = "finetuned-0123456789ab", tmp_path / "emb.sqlite"
    got = {}
    for which in ("first", "second"):
        embedder = Embedder(db, embedder=name, model_dir=tmp_path / which)
        got[which] = embedder.encode(TEXTS[:4])
        embedder.close()
    assert not np.allclose(got["first"], got["second"], atol=1e-4)
    np.testing.assert_allclose(got["second"], encode(second, TEXTS[:4]), atol=1e-5)
    again = Embedder(db, embedder=name, model_dir=tmp_path / "first")  # and the first's stay cached
    monkeypatch.setattr(embedders.FineTunedEncoder, "encode", lambda self, texts: pytest.fail("re-encoded"))
    np.testing.assert_array_equal(again.encode(TEXTS[:4]), got["first"])
    again.close()
