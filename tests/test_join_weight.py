"""The label model's weight in its product with the embedding expert, chosen on cross-fitted seeds."""
from __future__ import annotations

import numpy as np

from lfagent.fit.corpus import Corpus
from lfagent.fit.crossfit import _joined
from lfagent.fit.expert import JOIN_WEIGHTS, choose_join_weight, join_experts
from lfagent.fit.labeler import Labeler


def test_weight_one_is_the_plain_product_and_zero_the_expert_alone():
    lm = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    emb = np.array([[0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    covered = np.array([True, True, False])
    product = lm * emb / (lm * emb).sum(axis=1, keepdims=True)
    assert np.allclose(join_experts(lm, emb, covered, False, "product", weight=1.0)[:2], product[:2])
    assert np.allclose(join_experts(lm, emb, covered, False, "product", weight=0.0), emb)
    half = join_experts(lm, emb, covered, False, "product", weight=0.5)
    assert product[0, 0] > half[0, 0] > emb[0, 0]  # in between, toward the label model as the weight grows
    multi = join_experts(lm, emb, covered, True, "product", weight=0.0)
    assert np.allclose(multi, emb)


def _by_weight(lm, emb):
    covered = np.ones(len(lm), bool)
    return {w: join_experts(lm, emb, covered, False, "product", weight=w) for w in JOIN_WEIGHTS}


def test_confidently_wrong_lfs_get_no_weight_and_right_ones_full_weight():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    truth = np.eye(2)[y]
    expert = 0.75 * truth + 0.25 * (1 - truth)  # right, moderately sure
    wrong_lm = np.where(rng.random(60)[:, None] < 0.4, 1 - truth, truth) * 0.98 + 0.01  # 40% sure and wrong
    right_lm = truth * 0.98 + 0.01
    rows = np.arange(60)
    assert choose_join_weight(_by_weight(wrong_lm, expert), y, rows, False) < 1.0
    assert choose_join_weight(_by_weight(right_lm, expert), y, rows, False) == 1.0
    assert choose_join_weight(_by_weight(wrong_lm, expert), y, rows[:0], False) == 1.0  # nothing covered


def test_each_folds_weight_comes_from_the_other_folds():
    # Weight 0 predicts fold 0's seeds perfectly and the others badly; every other weight the reverse.
    # Fold 0's reported predictions must not be the ones that fit it best.
    y = np.array([0, 1] * 10)
    folds = [np.arange(0, 4), np.arange(4, 20)]
    good, bad = np.eye(2)[y] * 0.9 + 0.05, np.eye(2)[1 - y] * 0.9 + 0.05
    by_weight = {w: bad.copy() if w == 0.0 else good.copy() for w in JOIN_WEIGHTS}
    by_weight[0.0][folds[0]] = good[folds[0]]
    for w in JOIN_WEIGHTS[:-1]:
        by_weight[w][folds[0]] = bad[folds[0]]
    corpus = Corpus(class_names=["a", "b"], multi_label=False, seed_texts=[""] * 20, seed_y=y, unl_texts=[],
                    seed_emb=None, unl_emb=None, seed_rows=[{}] * 20, unl_rows=[])
    out, final = _joined(by_weight, np.ones(20, bool), corpus, folds)
    assert np.allclose(out[folds[0]], bad[folds[0]])  # chosen on fold 1: a weight other than 0
    assert np.allclose(out[folds[1]], bad[folds[1]])  # chosen on fold 0: weight 0
    assert final == 1.0  # on all seeds the others win (16 rows against 4)


def test_a_model_saved_before_the_weight_existed_keeps_the_plain_product():
    state = Labeler(class_names=["a", "b"], multi_label=False, lfs=[], label_model=None, prior=[0.5, 0.5])
    raw = state.model_dump()
    raw.pop("join_weight")
    assert Labeler.model_validate(raw).join_weight == 1.0


def _weak_heldout_strong_final_corpus():
    """Seeds whose LFs (one keyword per class) are right 70% of the time; the final encoder separates the
    classes cleanly while the held-out (group) encoders' vectors are noise."""
    from pathlib import Path

    from lfagent.fit.fewshot_views import ExpertViews

    rng = np.random.default_rng(0)
    n, m = 80, 400
    seed_y, unl_y = rng.integers(0, 2, n), rng.integers(0, 2, m)

    def texts(y, prefix):
        cue = np.where(rng.random(len(y)) < 0.7, y, 1 - y)
        return [f"{prefix} {i} {'alpha' if c == 0 else 'beta'}" for i, c in enumerate(cue)]

    def clean(y):
        return np.eye(2, 8)[y] * 3.0 + rng.normal(0, 0.3, (len(y), 8))

    noise = rng.normal(0, 1, (n, 8))
    corpus = Corpus(class_names=["A", "B"], multi_label=False, seed_texts=texts(seed_y, "seed"), seed_y=seed_y,
                    unl_texts=texts(unl_y, "record"), seed_emb=noise, unl_emb=rng.normal(0, 1, (m, 8)))
    corpus.expert_views = ExpertViews(name="finetuned-test", model_dir=Path("unused"), seed_emb=clean(seed_y),
                                      unl_emb=clean(unl_y), heldout=[noise] * 5)
    return corpus


def test_the_weight_is_chosen_next_to_a_stand_in_as_strong_as_the_final_expert(monkeypatch):
    import lfagent.fit.crossfit as crossfit
    from lfagent.fit.fold_fit import PipelineConfig
    from lfagent.lf import LabelingFunction, Provenance

    lfs = [LabelingFunction(name=f"kw_{c.lower()}", kind="keywords", label=c, keywords=[word],
                            provenance=Provenance(source="user")) for c, word in (("A", "alpha"), ("B", "beta"))]
    config = PipelineConfig(mine_ngrams=False, mine_embeddings=False)
    pins = {lf.name: "keep" for lf in lfs}
    corpus = _weak_heldout_strong_final_corpus()
    # Next to the clean final expert, 70%-right LFs only add noise: little or no weight.
    assert crossfit.run_pipeline(corpus, config, extra=lfs, pins=pins).metrics.join_weight <= 0.25
    # Chosen next to the held-out experts, which read noise, the same LFs look like the only signal.
    monkeypatch.setattr(crossfit, "_final_like", lambda labeler, *args: labeler)
    assert crossfit.run_pipeline(corpus, config, extra=lfs, pins=pins).metrics.join_weight >= 0.75
