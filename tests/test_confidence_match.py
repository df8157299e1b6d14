"""The final expert taught by the LLM's (noisy) record labels is rescaled to the seed-only expert's confidence."""
import numpy as np
import pytest

from lfagent.fit.expert import confidence_matched, expert_proba, fit_expert, scaled


def _clean_and_noisy(multi_label: bool, k: int = 3):
    rng = np.random.default_rng(0)
    centers = np.eye(k, 6) * 2.0
    y = rng.integers(0, k, 300)
    emb = centers[y] + rng.normal(0, 0.7, (300, 6))
    noisy = np.where(rng.random(300) < 0.3, rng.integers(0, k, 300), y)  # a labeller wrong on about a fifth
    if multi_label:
        y, noisy = np.eye(k, dtype=int)[y], np.eye(k, dtype=int)[noisy]
    clean = fit_expert(emb, y, multi_label, seed=0)
    taught = fit_expert(emb, noisy, multi_label, seed=0)
    return emb, clean, taught


def _confidence(state, emb, k):
    p = expert_proba(state, emb, k)
    return np.maximum(p, 1 - p).mean(axis=0) if state.multi_label else p.max(axis=1).mean()


@pytest.mark.parametrize("multi_label", [False, True])
def test_noisy_labels_soften_the_expert_and_matching_restores_the_reference_confidence(multi_label):
    emb, clean, taught = _clean_and_noisy(multi_label)
    assert np.all(_confidence(taught, emb, 3) < _confidence(clean, emb, 3) - 0.02)
    matched = confidence_matched(taught, clean, emb, 3)
    assert np.allclose(_confidence(matched, emb, 3), _confidence(clean, emb, 3), atol=1e-4)
    before, after = expert_proba(taught, emb, 3), expert_proba(matched, emb, 3)
    if multi_label:  # each class's ranking is kept
        assert all((np.argsort(before[:, c]) == np.argsort(after[:, c])).all() for c in range(3))
    else:
        assert (before.argmax(1) == after.argmax(1)).all()


def test_a_sharper_expert_is_softened_and_a_constant_class_left_alone():
    emb, clean, _ = _clean_and_noisy(False)
    sharp = scaled(clean, 3.0)
    assert np.isclose(_confidence(confidence_matched(sharp, clean, emb, 3), emb, 3), _confidence(clean, emb, 3),
                      atol=1e-4)
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(50, 4))
    y = np.column_stack([rng.integers(0, 2, 50), np.zeros(50, int)])  # class 1: no positive seed
    state = fit_expert(emb, y, True, seed=0, prior=np.array([0.5, 0.01]))
    matched = confidence_matched(scaled(state, 2.0), state, emb, 2)
    assert matched.constant == state.constant and np.isclose(_confidence(matched, emb, 2)[0],
                                                             _confidence(state, emb, 2)[0], atol=1e-4)
