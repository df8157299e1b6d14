"""The embedding expert: a classifier on sentence embeddings of the seeds, stored as plain weights.

It speaks for records no LF covers, and joins the label model on covered ones as a second, independent
expert (`join_experts`). It is trained with balanced class weights, so its output is a likelihood with a
flat prior: multiplied by the label model's posterior it does not count the class prior twice.
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


def fit_expert(emb: np.ndarray, y: np.ndarray, multi_label: bool, seed: int, c: float = 10.0) -> ExpertState | None:
    """Balanced logistic regression on seed embeddings; None when the seeds hold a single class."""
    from sklearn.linear_model import LogisticRegression

    def model():
        return LogisticRegression(C=c, max_iter=1000, random_state=seed, class_weight="balanced")

    if multi_label:
        state = ExpertState(multi_label=True)
        for k in range(y.shape[1]):
            column = y[:, k]
            if 0 < column.sum() < len(column):
                fitted = model().fit(emb, column)
                state.coef.append(fitted.coef_[0].tolist())
                state.intercept.append(float(fitted.intercept_[0]))
                state.constant.append(None)
            else:
                state.coef.append([])
                state.intercept.append(0.0)
                state.constant.append(float(column.mean()))
        return state
    if len(np.unique(y)) < 2:
        return None
    fitted = model().fit(emb, y)
    return ExpertState(multi_label=False, coef=fitted.coef_.tolist(), intercept=fitted.intercept_.tolist(),
                       classes=[int(k) for k in fitted.classes_])


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
    out[:, state.classes] = sub
    return out


def join_experts(lm: np.ndarray, emb: np.ndarray, covered: np.ndarray, multi_label: bool, how: Join) -> np.ndarray:
    """Covered rows: label model and embedding expert as independent experts ("product"), or the label
    model alone ("none"); rows no LF covers: the embedding expert."""
    eps = 1e-6
    out = emb.copy()
    if how == "product":
        if multi_label:  # per class, two-way products of independent binary experts
            pos = lm * emb
            neg = (1 - lm) * (1 - emb)
            joint = pos / np.maximum(pos + neg, eps)
        else:
            joint = np.clip(lm, eps, 1) * np.clip(emb, eps, 1)
            joint /= joint.sum(axis=1, keepdims=True)
        out[covered] = joint[covered]
    else:
        out[covered] = lm[covered]
    return out
