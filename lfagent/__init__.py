"""lfagent: task + ~100 seed labels -> sandboxed labeling functions -> calibrated silver labels."""
from lfagent.fit import LabelModel, MultiLabelModel
from lfagent.rundir.export import load_lfs
from lfagent.lf import ABSTAIN, LabelingFunction, Provenance
from lfagent.session import Session
from lfagent.task import ClassSpec, TaskSpec, load_task

__all__ = ["ABSTAIN", "ClassSpec", "LabelModel", "LabelingFunction", "MultiLabelModel", "Provenance", "Session",
           "TaskSpec", "load_lfs", "load_task"]
