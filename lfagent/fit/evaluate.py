"""Figures on a labelled test file the fit never saw, computed by the run's own labeler."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lfagent.data.dataset import Records
from lfagent.fit.calibrate import expected_calibration_error, multilabel_expected_calibration_error
from lfagent.fit.crossfit import multilabel_f1
from lfagent.fit.labeler import Labeler


def test_figures(labeler: Labeler, test: Records, *, embed: Callable[[list[str]], np.ndarray] | None = None,
                 embed_expert: Callable[[list[str]], np.ndarray] | None = None, pool=None) -> dict:
    """Accuracy (single-label; F1 of the second class too when there are two) or micro/macro F1 of the
    labeler's decisions (multi-label), coverage and ECE."""
    out = labeler.label(test.texts, test.rows, embed=embed, embed_expert=embed_expert, pool=pool)
    coverage = float(out.covered.mean()) if len(test) else 0.0
    if labeler.multi_label:
        decided = np.array([[name in labels for name in labeler.class_names] for labels in out.labels], bool)
        micro, macro = multilabel_f1(test.y, decided.reshape(len(test), labeler.k))
        return {"n": len(test), "micro_f1": micro, "macro_f1": macro, "coverage": coverage,
                "ece": float(multilabel_expected_calibration_error(out.probs, test.y))}
    pred = out.probs.argmax(axis=1)
    figures = {"n": len(test), "accuracy": float((pred == test.y).mean()), "coverage": coverage,
               "ece": float(expected_calibration_error(out.probs, test.y))}
    if labeler.k == 2:
        tp = int(((pred == 1) & (test.y == 1)).sum())
        figures[f"f1_{labeler.class_names[1]}"] = 2 * tp / max(int((pred == 1).sum() + (test.y == 1).sum()), 1)
    return figures
