"""The embedding expert: a classifier on sentence embeddings of the seeds, stored as plain weights.

It speaks for records no LF covers, and joins the label model on covered ones as a second, independent
expert (`join_experts`). It is trained with balanced class weights, so its output is a likelihood with a
flat prior: multiplied by the label model's posterior it does not count the class prior twice.

A class the training seeds hold no example of (a task whose seeds miss a class, or a cross-fitting fold
whose training part misses a rare one) is one the expert cannot speak for or against. It gives that
class its prior share (`unseen_share`: small, never zero) and the seen classes the rest, so on a row no
LF covers the class stays possible but unlikely; and wherever an LF votes it, `join_experts` leaves its
probability to the label model alone: a product with the expert's guess would veto every LF that votes
a class the seeds happen to miss.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

Join = Literal["product", "none"]


class ExpertState(BaseModel):
    """Logistic regression(s) on embeddings, as weights (no pickle): what model.json stores."""

    multi_label: bool
    coef: list[list[float]] = []
    intercept: list[float] = []
    classes: list[int] = []
    constant: list[float | None] = []  # multi-label classes with one seed value: a fixed probability
    unseen: list[int] = []  # classes no training seed carries (multi-label: no positive seed)
    unseen_share: list[float] = []  # single-label: the probability each of them gets (its prior)


def fit_expert(emb: np.ndarray, y: np.ndarray, multi_label: bool, seed: int, c: float = 10.0,
               prior: np.ndarray | None = None, *, sample_weight: np.ndarray | None = None,
               max_iter: int = 1000) -> ExpertState | None:
    """Balanced logistic regression on seed embeddings; None when the seeds hold a single class.

    `prior` (k,) is the share a class without training seeds gets (default: none for single-label,
    the column mean, 0, for multi-label). `sample_weight`: (n,) per row, or (n, k) per row and class for
    multi-label (the end model weighs silver rows by confidence, fit/end_model.py).
    """
    from sklearn.linear_model import LogisticRegression

    def model():
        return LogisticRegression(C=c, max_iter=max_iter, random_state=seed, class_weight="balanced")

    if multi_label:
        state = ExpertState(multi_label=True)
        for k in range(y.shape[1]):
            column = y[:, k]
            if 0 < column.sum() < len(column):
                fitted = model().fit(emb, column, sample_weight=None if sample_weight is None else sample_weight[:, k])
                state.coef.append(fitted.coef_[0].tolist())
                state.intercept.append(float(fitted.intercept_[0]))
                state.constant.append(None)
            else:
                state.coef.append([])
                state.intercept.append(0.0)
                unseen = column.sum() == 0
                state.constant.append(float(prior[k]) if unseen and prior is not None else float(column.mean()))
                if unseen:
                    state.unseen.append(k)
        return state
    if len(np.unique(y)) < 2:
        return None
    fitted = model().fit(emb, y, sample_weight=sample_weight)
    classes = [int(k) for k in fitted.classes_]
    unseen = [] if prior is None else [k for k in range(len(prior)) if k not in classes]
    return ExpertState(multi_label=False, coef=fitted.coef_.tolist(), intercept=fitted.intercept_.tolist(),
                       classes=classes, unseen=unseen, unseen_share=[float(prior[k]) for k in unseen])


def expert_proba(state: ExpertState, emb: np.ndarray, k: int) -> np.ndarray:
    """n x k probabilities from the stored weights (sklearn's own formulas)."""
    emb = np.asarray(emb, dtype=np.float64)
    if state.multi_label:
        cols = []
        for coef, intercept, constant in zip(state.coef, state.intercept, state.constant):
            cols.append(np.full(len(emb), constant) if constant is not None
                        else 1 / (1 + np.exp(-(emb @ np.asarray(coef) + intercept))))
        return np.column_stack(cols) if cols else np.zeros((len(emb), 0))
    logits = emb @ np.asarray(state.coef).T + np.asarray(state.intercept)
    if len(state.classes) == 2:  # sklearn's binary model has one weight row, for the second class
        p1 = 1 / (1 + np.exp(-logits[:, 0]))
        sub = np.column_stack([1 - p1, p1])
    else:
        logits -= logits.max(axis=1, keepdims=True)
        sub = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = np.zeros((len(emb), k))
    out[:, state.classes] = sub * (1.0 - sum(state.unseen_share))
    out[:, state.unseen] = state.unseen_share
    return out


def scaled(state: ExpertState, factor: float | np.ndarray) -> ExpertState:
    """The expert with its logits multiplied by `factor` (multi-label: one per class): its ranking of records
    kept, its confidence sharpened (> 1) or softened (< 1)."""
    factor = np.broadcast_to(np.asarray(factor, dtype=float), (len(state.coef),))
    return state.model_copy(update={
        "coef": [(np.asarray(row) * f).tolist() for row, f in zip(state.coef, factor)] if state.multi_label
        else (np.asarray(state.coef) * factor[0]).tolist(),
        "intercept": [float(b * f) for b, f in zip(state.intercept, factor)] if state.multi_label
        else (np.asarray(state.intercept) * factor[0]).tolist()})


def confidence_matched(state: ExpertState, reference: ExpertState, emb: np.ndarray, k: int,
                       max_rows: int = 20_000) -> ExpertState:
    """`state` with its logits rescaled so that its mean confidence on `emb` equals `reference`'s (multi-label:
    per class, the mean of max(p, 1 - p)).

    Why: the final expert also learns from the LLM's record labels, and noisy labels make a logistic regression
    less sure everywhere, a change the calibrator (fitted on held-out predictions of experts trained on seeds
    alone) cannot know of: unmatched, calibrated silver labels come out under-confident. Matched to the
    seed-only expert on the same records, it keeps what the labels taught it about which class, at the
    confidence the calibrator was fitted for."""
    emb = np.asarray(emb, dtype=np.float64)[:max_rows]  # a fixed prefix: the same answer on every refit
    if not len(emb) or state.multi_label != reference.multi_label:
        return state

    def confidence(s: ExpertState) -> np.ndarray:
        p = expert_proba(s, emb, k)
        return np.maximum(p, 1 - p).mean(axis=0) if s.multi_label else np.array([p.max(axis=1).mean()])

    target = confidence(reference)
    fixed = np.array([a is not None or b is not None for a, b in zip(state.constant, reference.constant)]
                     if state.multi_label else [False])  # a constant class has nothing to rescale
    lo, hi = np.full(len(target), -4.0), np.full(len(target), 4.0)  # log factor, e^-4 .. e^4
    for _ in range(40):  # confidence rises with the factor: bisect each class's log factor
        mid = (lo + hi) / 2
        too_sure = confidence(scaled(state, np.exp(mid))) > target
        hi = np.where(too_sure, mid, hi)
        lo = np.where(too_sure, lo, mid)
    return scaled(state, np.where(fixed, 1.0, np.exp((lo + hi) / 2)))


def join_experts(lm: np.ndarray, emb: np.ndarray, covered: np.ndarray, multi_label: bool, how: Join, *,
                 unseen: list[int] = (), reached: np.ndarray | None = None, weight: float = 1.0) -> np.ndarray:
    """Covered rows: label model and embedding expert as independent experts ("product"), or the label
    model alone ("none"); rows no LF covers: the embedding expert. `weight` tempers the label model in the
    product (p ~ p_lm ** weight * p_emb; 1: plain independent experts, 0: the expert alone), for LFs that
    are weaker than their own confidence says next to a strong expert (`choose_join_weight`).
    `reached` (n x len(unseen), bool) marks the rows where an LF votes each class the expert never saw:
    there that class's probability is the label model's, and the other classes share the rest in the
    joint's proportions."""
    eps = 1e-6
    out = emb.copy()
    if how == "product":
        if multi_label:  # per class, two-way products of independent binary experts
            pos = np.clip(lm, eps, 1) ** weight * emb
            neg = np.clip(1 - lm, eps, 1) ** weight * (1 - emb)
            joint = pos / np.maximum(pos + neg, eps)
        else:
            joint = np.clip(lm, eps, 1) ** weight * np.clip(emb, eps, 1)
            joint /= joint.sum(axis=1, keepdims=True)
        out[covered] = joint[covered]
    else:
        out[covered] = lm[covered]
    if len(unseen) and reached is not None and reached.any():
        out = _label_model_decides(out, lm, list(unseen), reached, multi_label)
    return out


def _label_model_decides(out: np.ndarray, lm: np.ndarray, unseen: list[int], reached: np.ndarray,
                         multi_label: bool) -> np.ndarray:
    mask = np.zeros(out.shape, dtype=bool)
    mask[:, unseen] = reached
    fixed = np.where(mask, lm, 0.0)
    if multi_label:  # independent classes: nothing else to rescale
        return np.where(mask, fixed, out)
    free = np.where(mask, 0.0, out)
    room = np.clip(1.0 - fixed.sum(axis=1, keepdims=True), 0.0, 1.0)
    free *= room / np.maximum(free.sum(axis=1, keepdims=True), 1e-12)
    return fixed + free


JOIN_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # first wins a tie: the plain product unless another does better


def choose_join_weight(by_weight: dict[float, np.ndarray], y: np.ndarray, rows: np.ndarray,
                       multi_label: bool) -> float:
    """The weight (a key of `by_weight`, the first on a tie; JOIN_WEIGHTS in crossfit) whose held-out
    predictions on `rows` (covered seeds: the only ones it changes) have the least log-loss. One number from
    five, each scored on every such seed: little room to fit noise. No rows: the plain product."""
    rows = np.asarray(rows)
    if not len(rows):
        return 1.0
    weights = list(by_weight)
    losses = [_log_loss(by_weight[w][rows], np.asarray(y)[rows], multi_label) for w in weights]
    return weights[int(np.argmin(losses))]


def _log_loss(probs: np.ndarray, y: np.ndarray, multi_label: bool) -> float:
    eps = 1e-6
    if multi_label:
        p = np.clip(probs, eps, 1 - eps)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1))))
