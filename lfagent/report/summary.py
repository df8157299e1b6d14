"""Figures for the card and report: pure functions over arrays and rows, no I/O."""
from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel

from lfagent.fit.calibrate import (ReliabilityBin, confidence_bins, expected_calibration_error,
                                   multilabel_expected_calibration_error, reliability_bins)


class Reliability(BaseModel):
    bins: list[ReliabilityBin]
    ece: float  # lfagent.fit's ECE, the figure metrics.json reports
    n: int
    what: str  # what confidence and accuracy mean here, for captions


def reliability(probs: np.ndarray, truth: np.ndarray, *, multi_label: bool = False,
                n_bins: int = 10) -> Reliability:
    """Equal-width bins of confidence vs observed accuracy, and the expected calibration error.

    Single-label: confidence is the top probability, right means argmax == label. Multi-label: every
    (record, class) probability is a point of the diagram, right means the class is present; the ECE is
    the mean over classes of each class's own ECE (lfagent.fit.multilabel_expected_calibration_error).
    """
    probs = np.asarray(probs, dtype=float)
    if not len(probs):
        return Reliability(bins=confidence_bins(np.zeros(0), np.zeros(0), n_bins), ece=0.0, n=0,
                           what="no predictions")
    if multi_label:
        truth = np.asarray(truth, dtype=float)
        bins = confidence_bins(probs.ravel(), truth.ravel(), n_bins)
        return Reliability(bins=bins, ece=multilabel_expected_calibration_error(probs, truth, n_bins),
                           n=int(probs.size), what="per-class probability vs how often the class is present")
    truth = np.asarray(truth)
    return Reliability(bins=reliability_bins(probs, truth, n_bins), ece=expected_calibration_error(probs, truth, n_bins),
                       n=len(probs), what="top-class probability vs accuracy")


def class_distribution(silver: list[dict], class_names: list[str], multi_label: bool) -> dict[str, int]:
    """Records per predicted class (multi-label: records carrying each label), in class order."""
    counts: Counter = Counter()
    for row in silver:
        if multi_label:
            counts.update(row.get("labels") or [])
        elif row.get("label") is not None:
            counts[row["label"]] += 1
    return {name: int(counts.get(name, 0)) for name in class_names}


def coverage_fraction(silver: list[dict]) -> float:
    return float(np.mean([bool(r.get("covered")) for r in silver])) if silver else 0.0


def lfs_by_source(lf_dicts: list[dict]) -> dict[str, int]:
    """Kept LFs counted by where they came from (provenance source, e.g. mined:ngram, llm:code)."""
    counts = Counter((lf.get("provenance") or {}).get("source", "user") for lf in lf_dicts)
    return dict(sorted(counts.items()))


def pairwise_disagreement(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rate, both) m x m. rate[i, j]: of the rows where LF i or LF j votes, the share where both vote
    and vote differently (a Jaccard-style conflict rate, symmetric); NaN where the two never vote on
    the same row, so "never meet" stays apart from "meet and agree". `both` counts rows where both vote."""
    L = np.asarray(L)
    m = L.shape[1]
    voted = (L != -1).astype(np.int64)
    both = voted.T @ voted
    counts = voted.sum(axis=0)
    either = counts[:, None] + counts[None, :] - both
    differ = np.zeros((m, m), dtype=np.int64)
    for i in range(m):
        mask = voted[:, i].astype(bool)
        if mask.any():
            sub = L[mask]
            differ[i] = ((sub != -1) & (sub != sub[:, [i]])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(both > 0, differ / np.maximum(either, 1), np.nan)
    return rate, both


def record_disagreement(L: np.ndarray, k: int) -> np.ndarray:
    """Per row: the share of its votes that go against its most-voted class (0 when < 2 votes)."""
    L = np.asarray(L)
    n = L.shape[0]
    if L.shape[1] == 0 or n == 0:
        return np.zeros(n)
    counts = np.stack([(L == c).sum(axis=1) for c in range(k)], axis=1)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total >= 2, 1.0 - counts.max(axis=1) / np.maximum(total, 1), 0.0)
    return share


def confidence_margin(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """How decided each prediction is, in [0, 1]: top-two gap (single-label), or the
    least decided class's distance from 0.5, doubled (multi-label)."""
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:
        return np.zeros(0)
    if multi_label:
        return np.abs(2 * probs - 1).min(axis=1)
    if probs.shape[1] < 2:
        return np.ones(len(probs))
    top_two = np.sort(probs, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]
