"""A run directory's files: the fitted model (model.json) that `generate` reapplies, silver labels, LF tables.

RUN_DIR/
  model.json     run id, task, kept LFs, label model state, calibrator, fallback, prior, LF-set hash
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
from pydantic import BaseModel

from lfagent.calibration import Calibrator
from lfagent.errors import InputError
from lfagent.lf import LabelingFunction
from lfagent.task import TaskSpec


class FallbackState(BaseModel):
    """Logistic regression(s) on embeddings, stored as weights (no pickle)."""

    multi_label: bool
    coef: list[list[float]] = []
    intercept: list[float] = []
    classes: list[int] = []
    constant: list[float | None] = []  # multi-label classes with one seed value: a fixed probability


class RunModel(BaseModel):
    """Everything needed to label new records the way the run did."""

    run_id: str
    task: dict
    lfs: list[LabelingFunction]
    label_model: dict | None
    calibrator: Calibrator
    fallback: FallbackState | None
    prior: list[float]
    lf_set_hash: str
    uses_embeddings: bool
    embedder: str = "minilm"  # lfagent.data.embedders name; runs written before it existed used MiniLM

    def task_spec(self) -> TaskSpec:
        spec = TaskSpec.model_validate({k: v for k, v in self.task.items() if k != "base_dir"})
        spec.base_dir = Path(self.task.get("base_dir", "."))
        return spec


def fallback_state(model, multi_label: bool) -> FallbackState | None:
    if model is None:
        return None
    if multi_label:
        state = FallbackState(multi_label=True)
        for m in model:
            if isinstance(m, float):
                state.coef.append([]), state.intercept.append(0.0), state.constant.append(m)
            else:
                state.coef.append(m.coef_[0].tolist()), state.intercept.append(float(m.intercept_[0]))
                state.constant.append(None)
        return state
    return FallbackState(multi_label=False, coef=model.coef_.tolist(), intercept=model.intercept_.tolist(),
                         classes=[int(c) for c in model.classes_])


def fallback_probs(state: FallbackState, emb: np.ndarray, k: int) -> np.ndarray:
    """Same probabilities as the fitted sklearn model, from stored weights."""
    if state.multi_label:
        cols = []
        for coef, intercept, constant in zip(state.coef, state.intercept, state.constant):
            cols.append(np.full(len(emb), constant) if constant is not None
                        else 1 / (1 + np.exp(-(emb @ np.asarray(coef) + intercept))))
        return np.column_stack(cols)
    logits = emb @ np.asarray(state.coef).T + np.asarray(state.intercept)
    if len(state.classes) == 2:  # sklearn's binary model has one weight row for class 1
        p1 = 1 / (1 + np.exp(-logits[:, 0]))
        sub = np.column_stack([1 - p1, p1])
    else:
        logits -= logits.max(axis=1, keepdims=True)
        sub = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = np.zeros((len(emb), k))
    out[:, state.classes] = sub
    return out


def write_json_atomic(path: Path, data) -> None:
    """Write then rename, so a kill never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False, default=jsonable)
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
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


def silver_row(record_id, probs: np.ndarray, covered: bool, class_names: list[str], multi_label: bool,
               thresholds: list[float] | None = None) -> dict:
    """One silver.jsonl line: {"id", "label"|"labels", "probs", "covered"}."""
    rounded = {name: round(float(p), 4) for name, p in zip(class_names, probs)}
    row = {"id": record_id}
    if multi_label:
        cuts = thresholds or [0.5] * len(class_names)
        row["labels"] = [name for name, p, cut in zip(class_names, probs, cuts) if p >= cut]
    else:
        row["label"] = class_names[int(np.argmax(probs))] if len(probs) else None
    row["probs"] = rounded
    row["covered"] = bool(covered)
    return row


