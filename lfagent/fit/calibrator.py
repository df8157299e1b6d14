"""The calibrator a run stores: temperature scaling (single-label) or per-class Platt (multi-label).

Fitting is lfagent.fit's; this is the JSON-safe state that model.json keeps and `generate` reuses.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from lfagent.fit import PlattScaler, TemperatureScaler


class Calibrator(BaseModel):
    multi_label: bool = False
    temperature: float = 1.0
    platt: list[tuple[float, float]] = []  # multi-label: per class (a, b) in sigmoid(a * logit(p) + b)
    # Multi-label decisions: a class is in `labels` when its calibrated probability reaches its threshold.
    # Calibrated probabilities of rare classes seldom reach 0.5, so thresholds are chosen for F1 on the
    # cross-fitted seed predictions, or (fine-tuned expert) by `even_odds_thresholds`.
    thresholds: list[float] = []

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Multi-label: boolean n x k matrix of the classes each record carries."""
        probs = np.asarray(probs, dtype=float)
        cut = np.asarray(self.thresholds) if self.thresholds else np.full(probs.shape[-1], 0.5)
        return probs >= cut

    def transform(self, probs: np.ndarray) -> np.ndarray:
        if self.multi_label:
            scaler = PlattScaler()
            scaler.coefs = list(self.platt) or [(1.0, 0.0)] * np.asarray(probs).shape[1]
            return scaler.transform(probs)
        scaler = TemperatureScaler()
        scaler.temperature = self.temperature
        return scaler.transform(probs)


def fit_calibrator(probs: np.ndarray, y: np.ndarray, *, multi_label: bool = False) -> Calibrator:
    """Fit on held-out (cross-fitted) predictions and their seed labels."""
    if multi_label:
        return Calibrator(multi_label=True, platt=PlattScaler().fit(probs, y).coefs)
    return Calibrator(temperature=TemperatureScaler().fit(probs, np.asarray(y, dtype=int)).temperature)


def f1_thresholds(probs: np.ndarray, y: np.ndarray) -> list[float]:
    """Per class, the probability cut-off with the best F1 on labelled (held-out) predictions."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y, dtype=bool)
    cuts = []
    for c in range(probs.shape[1]):
        candidates = np.unique(np.concatenate([probs[:, c], [0.5]]))
        best, best_f1 = 0.5, -1.0
        for cut in candidates:
            pred = probs[:, c] >= cut
            tp = np.sum(pred & y[:, c])
            f1 = 2 * tp / max(pred.sum() + y[:, c].sum(), 1)
            if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and abs(cut - 0.5) < abs(best - 0.5)):
                best, best_f1 = float(cut), f1
        cuts.append(best)
    return cuts


def even_odds_thresholds(calibrator: Calibrator) -> list[float]:
    """Per class, the calibrated probability that the uncalibrated joint's 0.5 maps to: a record carries a
    class where the joint (the balanced expert, times the label model where LFs vote) gives it even odds or
    better. For a fine-tuned expert, whose held-out vectors come from encoders that saw half the seeds:
    cut-offs tuned for F1 on them do not carry over to the final encoder's sharper scores
    (evals/results/multilabel-decisions/). A Platt fit that does not rise with the score keeps 0.5."""
    return [float(1.0 / (1.0 + np.exp(-b))) if a > 0 else 0.5 for a, b in calibrator.platt]
