"""lfagent: task + ~100 seed labels -> sandboxed labeling functions -> calibrated silver labels."""
from lfagent.lf import ABSTAIN, LabelingFunction, Provenance
from lfagent.task import ClassSpec, TaskSpec, load_task

__all__ = ["ABSTAIN", "ClassSpec", "LabelingFunction", "Provenance", "TaskSpec", "load_task"]
