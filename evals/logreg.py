"""Logistic regression on sentence embeddings: the `lr-seeds` baseline and the end model.

Single-label: one multinomial model; classes never seen in training get probability 0.
Multi-label: one binary model per class; a class whose training labels are constant gets that constant.
`fit_predict_soft_logreg` is the end model: the same model trained on soft (probabilistic) labels.

C=10 with balanced class weights: MiniLM vectors are unit-length, so sklearn's default C=1 underfits
and, on skewed tasks (sms, goemotions), predicts only the majority class (F1 0.2 / 0.02 from 100 seeds).
Chosen once over C in {1, 10, 100} x {unweighted, balanced} (3 draws, all four datasets), as the best
all-round setting for both 100 seeds and 2000 gold rows: the baseline is made strong on purpose.
"""
from __future__ import annotations

import warnings

import numpy as np


def fit_predict_logreg(X: np.ndarray, y: np.ndarray, X_new: np.ndarray, *, k: int, multi_label: bool,
                       C: float = 10.0, seed: int = 0, balanced: bool = True) -> np.ndarray:
    """Train on (X, y) and return class probabilities for X_new: (n_new, k).

    `C=1.0, balanced=False` is sklearn's default logistic regression (the `lr-seeds-default` baseline).
    """
    if multi_label:
        y = np.asarray(y, dtype=int).reshape(len(X), k)
        return np.column_stack([_binary_probs(X, y[:, c], X_new, C, seed, balanced) for c in range(k)])
    y = np.asarray(y, dtype=int)
    out = np.zeros((len(X_new), k))
    present = np.unique(y)
    if len(present) == 0:
        return np.full((len(X_new), k), 1.0 / k)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    model = _model(C, seed, balanced).fit(X, y)
    out[:, model.classes_] = model.predict_proba(X_new)
    return out


def _binary_probs(X, y, X_new, C, seed, balanced=True) -> np.ndarray:
    if len(y) == 0:
        return np.full(len(X_new), 0.5)
    if y.min() == y.max():
        return np.full(len(X_new), float(y[0]))
    return _model(C, seed, balanced).fit(X, y).predict_proba(X_new)[:, 1]


def _model(C: float, seed: int, balanced: bool = True):
    from sklearn.linear_model import LogisticRegression

    warnings.filterwarnings("ignore", module="sklearn")
    return LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=2000, random_state=seed)


MIN_WEIGHT = 1e-4  # soft-label rows lighter than this change nothing measurable and only cost time


def fit_predict_soft_logreg(X: np.ndarray, P: np.ndarray, X_new: np.ndarray, *, k: int, multi_label: bool,
                            C: float = 10.0, seed: int = 0) -> np.ndarray:
    """Train on every row of X with its soft label P (n x k) and return probabilities for X_new: (n_new, k).

    Each row enters once per class with weight P[i, c] (multi-label: once as positive with weight P[i, c]
    and once as negative with 1 - P[i, c], per class), so the loss is the cross-entropy against the soft
    label itself: a row the labeler is unsure of pulls little towards any class, and a row no LF covers
    adds what its probabilities say (the prior, or the embedding expert's view) rather than being left
    out. Chosen over "hard label weighted by confidence", which turns a 0.4 / 0.35 / 0.25 row into a
    0.4-weight vote for one class and throws the rest of its label away. Balanced class weights, as in
    `fit_predict_logreg`, are computed from each class's soft mass (sum of its probabilities).
    """
    X, P = np.asarray(X, dtype=float), np.asarray(P, dtype=float).reshape(len(X), k)
    if multi_label:
        return np.column_stack([_soft_binary_probs(X, P[:, c], X_new, C, seed) for c in range(k)])
    rows, classes = np.nonzero(P >= MIN_WEIGHT)
    out = np.zeros((len(X_new), k))
    if len(rows) == 0:
        return np.full((len(X_new), k), 1.0 / k)
    weights = P[rows, classes] * _balanced(P[rows, classes], classes)
    present = np.unique(classes)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    model = _model(C, seed, balanced=False).fit(X[rows], classes, sample_weight=weights)
    out[:, model.classes_] = model.predict_proba(X_new)
    return out


def _soft_binary_probs(X, p, X_new, C, seed) -> np.ndarray:
    both = np.concatenate([p, 1 - p])
    y = np.repeat([1, 0], len(p))
    keep = both >= MIN_WEIGHT
    if not keep.any():
        return np.full(len(X_new), 0.5)
    if len(np.unique(y[keep])) == 1:
        return np.full(len(X_new), float(y[keep][0]))
    X2 = np.vstack([X, X])[keep]
    weights = both[keep] * _balanced(both[keep], y[keep])
    return _model(C, seed, balanced=False).fit(X2, y[keep], sample_weight=weights).predict_proba(X_new)[:, 1]


def _balanced(weights: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per row, sklearn's "balanced" factor total / (n_classes * class total), over soft masses."""
    present, index = np.unique(classes, return_inverse=True)
    mass = np.bincount(index, weights=weights)
    return (weights.sum() / (len(present) * mass))[index]
