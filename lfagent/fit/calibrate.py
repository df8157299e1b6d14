"""Calibration of class probabilities: temperature scaling, isotonic, Platt; ECE and reliability bins."""
from __future__ import annotations

from typing import Callable, Literal, Protocol

import numpy as np
from pydantic import BaseModel

from lfagent.fit.label_matrix import LabelMatrixError, check_labels, check_probabilities

_EPS = 1e-12


class Calibrator(Protocol):
    def fit(self, probs: np.ndarray, y: np.ndarray) -> "Calibrator": ...
    def transform(self, probs: np.ndarray) -> np.ndarray: ...


def _checked(probs, y):
    probs = check_probabilities(probs)
    return probs, check_labels(y, probs.shape[1], n_rows=probs.shape[0])


class TemperatureScaler:
    """softmax(log p / T), with T fitted by minimising the log-loss on labelled probabilities."""

    def __init__(self) -> None:
        self.temperature = 1.0

    def fit(self, probs, y) -> "TemperatureScaler":
        from scipy.optimize import minimize_scalar  # here, not at import: scipy.optimize costs ~0.4 s

        probs, y = _checked(probs, y)
        logp = np.log(np.clip(probs, _EPS, 1.0))

        def nll(log_t: float) -> float:
            scaled = logp / np.exp(log_t)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            return float(np.mean(log_norm - scaled[np.arange(len(y)), y]))

        # optimise log T so T stays positive; [1/100, 100] covers any sane miscalibration
        self.temperature = float(np.exp(minimize_scalar(nll, bounds=(-4.6, 4.6), method="bounded").x))
        return self

    def transform(self, probs) -> np.ndarray:
        logp = np.log(np.clip(check_probabilities(probs), _EPS, 1.0)) / self.temperature
        logp -= logp.max(axis=1, keepdims=True)
        out = np.exp(logp)
        return out / out.sum(axis=1, keepdims=True)


class IsotonicCalibrator:
    """One-vs-rest isotonic regression per class, renormalised to sum to 1."""

    def __init__(self) -> None:
        self.models: list = []

    def fit(self, probs, y) -> "IsotonicCalibrator":
        from sklearn.isotonic import IsotonicRegression
        probs, y = _checked(probs, y)
        self.models = [IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
                       .fit(probs[:, c], (y == c).astype(float)) for c in range(probs.shape[1])]
        return self

    def transform(self, probs) -> np.ndarray:
        probs = check_probabilities(probs)
        out = np.column_stack([m.predict(probs[:, c]) for c, m in enumerate(self.models)]) + 1e-6
        return out / out.sum(axis=1, keepdims=True)


class PlattScaler:
    """Binary Platt scaling per column: sigmoid(a * logit(p) + b). For independent (multi-label) probs."""

    def __init__(self) -> None:
        self.coefs: list[tuple[float, float]] = []

    def fit(self, probs, Y) -> "PlattScaler":
        from sklearn.linear_model import LogisticRegression
        probs, Y = _check_multilabel(probs, Y)
        self.coefs = []
        for c in range(probs.shape[1]):
            if Y[:, c].min() == Y[:, c].max():  # one class only: nothing to learn
                self.coefs.append((1.0, 0.0))
                continue
            lr = LogisticRegression(C=1e4).fit(_logit(probs[:, c])[:, None], Y[:, c])
            self.coefs.append((float(lr.coef_[0, 0]), float(lr.intercept_[0])))
        return self

    def transform(self, probs) -> np.ndarray:
        probs = np.asarray(probs, dtype=float)
        return np.column_stack([1.0 / (1.0 + np.exp(-(a * _logit(probs[:, c]) + b)))
                                for c, (a, b) in enumerate(self.coefs)])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _check_multilabel(probs, Y):
    probs, Y = np.asarray(probs, dtype=float), np.asarray(Y)
    if probs.ndim != 2 or Y.shape != probs.shape:
        raise LabelMatrixError(f"multi-label probs and Y must both be n x k, got {probs.shape} and {Y.shape}")
    if not np.all((Y == 0) | (Y == 1)):
        raise LabelMatrixError("multi-label Y must hold only 0/1")
    if not np.all(np.isfinite(probs)) or probs.min(initial=0) < 0 or probs.max(initial=0) > 1:
        raise LabelMatrixError("multi-label probs must hold finite values in [0, 1]")
    return probs, Y.astype(int)


CalibrationMethod = Literal["temperature", "isotonic"]


def make_calibrator(method: CalibrationMethod = "temperature") -> Calibrator:
    if method == "temperature":
        return TemperatureScaler()
    if method == "isotonic":
        return IsotonicCalibrator()
    raise LabelMatrixError(f"calibration method must be 'temperature' or 'isotonic', got {method!r}")


def cross_fit_calibrated_probs(probs, y, *, method: CalibrationMethod = "temperature",
                               n_folds: int = 5, seed: int = 0,
                               probs_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                               ) -> np.ndarray:
    """Out-of-fold calibrated probabilities for labelled rows: each row's calibrator never saw it.

    If `probs_fn(train_idx, held_idx)` is given, it returns held-out-row probabilities from a model
    refitted without the held rows (so the base model is cross-fitted too); else `probs` is used.
    """
    probs, y = _checked(probs, y)
    n = len(y)
    if n < n_folds:
        raise LabelMatrixError(f"need at least n_folds={n_folds} labelled rows, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % n_folds
    out = np.zeros_like(probs)
    for fold in range(n_folds):
        held, train = np.nonzero(folds == fold)[0], np.nonzero(folds != fold)[0]
        if probs_fn is None:
            train_probs, held_probs = probs[train], probs[held]
        else:
            train_probs = check_probabilities(probs_fn(train, train))
            held_probs = check_probabilities(probs_fn(train, held))
        out[held] = make_calibrator(method).fit(train_probs, y[train]).transform(held_probs)
    return out


class ReliabilityBin(BaseModel):
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)


def reliability_bins(probs, y, n_bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins of top-label confidence, with mean confidence and accuracy per bin."""
    probs, y = _checked(probs, y)
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    return confidence_bins(confidence, correct, n_bins)


def confidence_bins(confidence: np.ndarray, outcome: np.ndarray, n_bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins of `confidence` with the mean outcome (1 = right / present) in each."""
    if n_bins < 1:
        raise LabelMatrixError(f"n_bins must be >= 1, got {n_bins}")
    index = _bin_index(confidence, n_bins)
    bins = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append(ReliabilityBin(lower=b / n_bins, upper=(b + 1) / n_bins, count=count,
                                   mean_confidence=float(confidence[mask].mean()) if count else None,
                                   accuracy=float(outcome[mask].mean()) if count else None))
    return bins


def _ece_from_bins(bins: list[ReliabilityBin], n: int) -> float:
    return float(sum(b.count / n * abs(b.mean_confidence - b.accuracy) for b in bins if b.count))


def expected_calibration_error(probs, y, n_bins: int = 10) -> float:
    """Top-label ECE: sum over bins of (bin share) * |mean confidence - accuracy|."""
    probs, y = _checked(probs, y)
    return _ece_from_bins(reliability_bins(probs, y, n_bins), len(y)) if len(y) else float("nan")


def binary_expected_calibration_error(p, outcome, n_bins: int = 10) -> float:
    """ECE of P(positive): bins over p, |mean p - positive rate| per bin."""
    p, outcome = np.asarray(p, dtype=float), np.asarray(outcome, dtype=float)
    return _ece_from_bins(confidence_bins(p, outcome, n_bins), len(p)) if len(p) else float("nan")


def multilabel_expected_calibration_error(probs, Y, n_bins: int = 10) -> float:
    """Mean over classes of the binary ECE of each class's independent probability."""
    probs, Y = _check_multilabel(probs, Y)
    return float(np.mean([binary_expected_calibration_error(probs[:, c], Y[:, c], n_bins)
                          for c in range(probs.shape[1])]))
