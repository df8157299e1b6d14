"""The calibrator a run stores: temperature scaling (single-label) or per-class Platt (multi-label).

Fitting is lfagent.aggregate's; this is the JSON-safe state that model.json keeps and `generate` reuses.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from lfagent.aggregate import PlattScaler, TemperatureScaler


class Calibrator(BaseModel):
    multi_label: bool = False
    temperature: float = 1.0
    platt: list[tuple[float, float]] = []  # multi-label: per class (a, b) in sigmoid(a * logit(p) + b)

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
