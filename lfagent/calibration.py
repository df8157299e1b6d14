"""The calibrator a run stores: temperature scaling (single-label) or per-class Platt (multi-label)."""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy.optimize import minimize_scalar

EPS = 1e-6


class Calibrator(BaseModel):
    multi_label: bool = False
    temperature: float = 1.0
    # Multi-label: per class (a, b) in sigmoid(a * logit(p) + b).
    platt: list[tuple[float, float]] = []

    def transform(self, probs: np.ndarray) -> np.ndarray:
        probs = np.clip(np.asarray(probs, dtype=float), EPS, 1 - EPS)
        if self.multi_label:
            logits = np.log(probs / (1 - probs))
            a = np.array([p[0] for p in self.platt]) if self.platt else np.ones(probs.shape[1])
            b = np.array([p[1] for p in self.platt]) if self.platt else np.zeros(probs.shape[1])
            return 1 / (1 + np.exp(-(logits * a + b)))
        scaled = np.log(probs) / self.temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        out = np.exp(scaled)
        return out / out.sum(axis=1, keepdims=True)


def fit_calibrator(probs: np.ndarray, y: np.ndarray, *, multi_label: bool = False) -> Calibrator:
    """Fit on held-out (cross-fitted) predictions and their seed labels."""
    probs = np.clip(np.asarray(probs, dtype=float), EPS, 1 - EPS)
    if multi_label:
        return Calibrator(multi_label=True, platt=[_fit_platt(probs[:, c], np.asarray(y)[:, c])
                                                   for c in range(probs.shape[1])])
    y = np.asarray(y, dtype=int)
    log_p = np.log(probs)

    def nll(log_t: float) -> float:
        scaled = log_p / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[np.arange(len(y)), y] - log_norm).mean())

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return Calibrator(temperature=float(np.exp(best.x)))


def _fit_platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if y.min() == y.max():
        return (1.0, 0.0)
    from sklearn.linear_model import LogisticRegression

    logit = np.log(p / (1 - p)).reshape(-1, 1)
    model = LogisticRegression(C=1.0).fit(logit, y.astype(int))
    return (float(model.coef_[0, 0]), float(model.intercept_[0]))
