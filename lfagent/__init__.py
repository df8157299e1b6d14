"""lfagent: task + ~100 seed labels -> sandboxed labeling functions -> calibrated silver labels.

The public names are loaded on first use, so `lfagent --help` and `lfagent init` start without numpy.
"""
from __future__ import annotations

import importlib

_PUBLIC = {
    "ABSTAIN": "lfagent.lf", "LabelingFunction": "lfagent.lf", "Provenance": "lfagent.lf",
    "ClassSpec": "lfagent.task", "TaskSpec": "lfagent.task", "load_task": "lfagent.task",
    "LabelModel": "lfagent.fit.label_model", "MultiLabelModel": "lfagent.fit.multilabel",
    "Labeler": "lfagent.fit.labeler", "Session": "lfagent.session", "load_lfs": "lfagent.rundir.export",
    "EndModel": "lfagent.fit.end_model",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lfagent' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
