"""Scores of one system's predictions on one draw, and mean/sd over draws. Pure functions over arrays.

The headline `score` per dataset: accuracy (youtube, trec, WRENCH folders), F1 of the positive class
for skewed binary tasks (sms: spam), micro F1 for multi-label (goemotions; `macro_f1` beside it).
Rows a system leaves uncovered still count: they are scored by the probabilities the system gives
them (label models give the class prior), as in WRENCH.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lfagent.fit import expected_calibration_error, multilabel_expected_calibration_error
from lfagent.fit.crossfit import macro_f1, multilabel_f1


@dataclass
class SystemOutput:
    """What a system produced for one draw.

    test_probs: (n_scored, k) for the test rows `test_rows` (all test rows unless a limit applies).
    train_probs: (n_extra, k) for the draw's extra train rows, or None when the system gives none
    (then there is no end model).
    """
    test_probs: np.ndarray
    test_covered: np.ndarray
    test_rows: np.ndarray
    train_probs: np.ndarray | None = None
    train_covered: np.ndarray | None = None
    # Multi-label: the system's own class decisions (lfagent's `labels`), when it makes them; else p >= 0.5.
    test_decisions: np.ndarray | None = None
    train_decisions: np.ndarray | None = None
    llm_calls: int = 0
    llm_tokens: int = 0
    wall_s: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)


def score_name(multi_label: bool, positive_class: int | None, class_names: list[str]) -> str:
    if multi_label:
        return "micro-F1"
    if positive_class is not None:
        return f"F1({class_names[positive_class]})"
    return "accuracy"


def prediction_scores(probs: np.ndarray, y: np.ndarray, *, multi_label: bool,
                      positive_class: int | None = None, decisions: np.ndarray | None = None) -> dict[str, float]:
    """score, accuracy, macro_f1, ece (and f1 of the positive class when given)."""
    probs = np.asarray(probs, dtype=float)
    if multi_label:
        pred = np.asarray(decisions, bool) if decisions is not None else probs >= 0.5
        micro, macro = multilabel_f1(y, pred)
        exact = float(np.mean((pred == np.asarray(y, bool)).all(axis=1)))
        return {"score": micro, "accuracy": exact, "macro_f1": macro,
                "ece": multilabel_expected_calibration_error(np.clip(probs, 0, 1), y)}
    probs = probs / probs.sum(axis=1, keepdims=True).clip(1e-12)
    pred = probs.argmax(axis=1)
    k = probs.shape[1]
    out = {"accuracy": float(np.mean(pred == y)), "macro_f1": macro_f1(y, pred, k),
           "ece": expected_calibration_error(probs, y)}
    if positive_class is not None:
        out["f1_positive"] = binary_f1(y == positive_class, pred == positive_class)
    out["score"] = out.get("f1_positive", out["accuracy"])
    return out


def binary_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = int(np.sum(truth & pred))
    denominator = int(np.sum(truth)) + int(np.sum(pred))
    return 2 * tp / denominator if denominator else 0.0


def hard_labels(probs: np.ndarray, multi_label: bool, decisions: np.ndarray | None = None) -> np.ndarray:
    probs = np.asarray(probs)
    if multi_label:
        return (np.asarray(decisions, bool) if decisions is not None else probs >= 0.5).astype(int)
    return probs.argmax(axis=1)


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample sd over draws, ignoring None/NaN; sd is 0 for one value, None for none."""
    clean = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not clean:
        return None, None
    sd = float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0
    return float(np.mean(clean)), sd


SUMMARY_FIELDS = ("score", "accuracy", "macro_f1", "end_model", "coverage", "ece", "llm_calls", "llm_tokens",
                  "wall_s", "n_scored")


def summarize(draw_rows: list[dict]) -> dict:
    """Mean and sd of each field over the rows of one (dataset, system)."""
    summary = {"draws": len(draw_rows)}
    for name in SUMMARY_FIELDS:
        mean, sd = mean_sd([row.get(name) for row in draw_rows])
        summary[name] = {"mean": mean, "sd": sd}
    notes = sorted({row["note"] for row in draw_rows if row.get("note")})
    summary["note"] = "; ".join(notes)
    return summary
