"""Logistic regression on sentence embeddings: the `lr-seeds` baseline and the end model.

Single-label: one multinomial model; classes never seen in training get probability 0.
Multi-label: one binary model per class; a class whose training labels are constant gets that constant.
`fit_predict_weighted_logreg` is the end model: the same model on silver labels weighted by confidence.

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



def fit_predict_weighted_logreg(X: np.ndarray, P: np.ndarray, X_new: np.ndarray, *, k: int, multi_label: bool,
                                decisions: np.ndarray | None = None, C: float = 10.0, seed: int = 0) -> np.ndarray:
    """The end model: train on every row of X with its silver label weighted by the labeler's confidence
    in it, and return probabilities for X_new: (n_new, k).

    Single-label: the top class of P (n x k), weighted by its probability. Multi-label: per class, the
    system's decision (`decisions`, else P >= 0.5), weighted by P[i, c] when on and 1 - P[i, c] when off.
    Every row counts, covered or not, so coverage cannot make the end model worse by adding rows; a row
    the labeler is unsure of counts little. Chosen over fully soft labels (each row once per class,
    weighted by its probability): with balanced class weights the diffuse tails of the rare classes add
    up to mass the balancing then inflates (lfagent --llm none, 5 draws: sms F1 0.785 against 0.865, trec
    0.681 against 0.745), and without them trec and youtube lose (0.727, 0.914) though sms gains (0.877):
    evals/results/end-model-all-rows/weighting.md, from evals/experiments/end_model_weighting.py.
    """
    X, P = np.asarray(X, dtype=float), np.asarray(P, dtype=float).reshape(len(X), k)
    if multi_label:
        on = np.asarray(decisions, bool) if decisions is not None else P >= 0.5
        return np.column_stack([_weighted_binary_probs(X, on[:, c], np.where(on[:, c], P[:, c], 1 - P[:, c]),
                                                       X_new, C, seed) for c in range(k)])
    y, weight = P.argmax(axis=1), P.max(axis=1)
    out = np.zeros((len(X_new), k))
    present = np.unique(y)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    # sklearn weighs "balanced" classes by their sample-weight mass (>= 1.4): confidence mass here
    model = _model(C, seed, balanced=True).fit(X, y, sample_weight=weight)
    out[:, model.classes_] = model.predict_proba(X_new)
    return out


def _weighted_binary_probs(X, on, weight, X_new, C, seed) -> np.ndarray:
    if on.min() == on.max():
        return np.full(len(X_new), float(on[0]))
    return _model(C, seed, True).fit(X, on.astype(int), sample_weight=weight).predict_proba(X_new)[:, 1]
