"""A run directory's files: the fitted model (model.json) that `generate` reapplies, silver labels, LF tables.

RUN_DIR/
  model.json     run id, task, LF-set hash and the labeler (kept LFs, label model, embedding expert,
                 how they join, calibrator and multi-label thresholds): see lfagent/fit/labeler.py
  silver.jsonl   one line per unlabeled record
  lfs.json       kept LFs with their stats; lfs.txt the same as a readable table
  candidates.json every candidate with why it was dropped
  metrics.json   cross-fitted seed figures, coverage, ECE
  heldout.jsonl  each seed's cross-fitted calibrated probabilities (for audit and the report)
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, model_validator

from lfagent.fit.calibrator import Calibrator
from lfagent.fit.labeler import Labeler
from lfagent.errors import InputError
from lfagent.lf import LabelingFunction
from lfagent.task import TaskSpec


class RunModel(BaseModel):
    """model.json: the run's identity, its task, and the labeler every face calls."""

    run_id: str
    task: dict
    labeler: Labeler
    lf_set_hash: str
    uses_embeddings: bool

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data):
        """model.json written before the labeler existed kept its parts side by side."""
        if isinstance(data, dict) and "labeler" not in data and "lfs" in data:
            task = data.get("task") or {}
            classes = [c["name"] if isinstance(c, dict) else c for c in task.get("classes", [])]
            data = {**data, "labeler": {
                "class_names": classes, "multi_label": bool(task.get("multi_label", False)), "lfs": data["lfs"],
                "label_model": data.get("label_model"), "prior": data.get("prior", []),
                "expert": data.get("fallback") if data.get("uses_embeddings") else None,
                "calibrator": data.get("calibrator"), "text_field": task.get("text_field", "text"),
                "embedder": data.get("embedder", "minilm") if data.get("uses_embeddings") else None}}
        return data

    @property
    def lfs(self) -> list[LabelingFunction]:
        return self.labeler.lfs

    @property
    def calibrator(self) -> Calibrator | None:
        return self.labeler.calibrator

    def task_spec(self) -> TaskSpec:
        spec = TaskSpec.model_validate({k: v for k, v in self.task.items() if k != "base_dir"})
        spec.base_dir = Path(self.task.get("base_dir", "."))
        return spec


def _readable_tmp(path: Path) -> tuple[int, str]:
    """A temporary file beside `path` with the permissions a plain open() would give (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def write_json_atomic(path: Path, data) -> None:
    """Write then rename, so a kill never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _readable_tmp(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False, default=jsonable)
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _readable_tmp(path)
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=jsonable) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def jsonable(value):
    """json.dump `default=`: numpy scalars and arrays, pydantic models; anything else is an error."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_model(run_dir: Path, model: RunModel) -> None:
    write_json_atomic(Path(run_dir) / "model.json", model.model_dump(mode="json"))


def load_model(run_dir: str | Path) -> RunModel:
    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise InputError("no fitted model here; run `lfagent run TASK.yaml --out RUN_DIR` first", path=path)
    try:
        return RunModel.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"model file is damaged: {str(exc).splitlines()[0]}", path=path) from None


def silver_rows(ids, labeler: Labeler, probs: np.ndarray, covered: np.ndarray):
    """silver.jsonl lines: {"id", "label"|"labels", "probs", "covered"}; decisions are the labeler's."""
    names = labeler.class_names
    key = "labels" if labeler.multi_label else "label"
    for record_id, label, p, c in zip(ids, labeler.decide(probs), probs, covered):
        yield {"id": record_id, key: label, "probs": {name: round(float(v), 4) for name, v in zip(names, p)},
               "covered": bool(c)}
