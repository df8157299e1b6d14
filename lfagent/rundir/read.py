"""Read a run directory (see lfagent/rundir/files.py for its layout) into one object, with clear errors.

Only model.json is required; the other files are read when present, so a card or report can still be
made from a run that has, say, no heldout.jsonl. Errors name the file and line.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lfagent.rundir.files import RunModel, load_model
from lfagent.data.readers import iter_rows
from lfagent.errors import InputError
from lfagent.sqlite_read import reading_connection


@dataclass
class RunArtifacts:
    """What a run wrote. Rows stay plain dicts, as in the files."""

    path: Path
    model: RunModel
    silver: list[dict] = field(default_factory=list)
    heldout: list[dict] = field(default_factory=list)
    lfs: list[dict] = field(default_factory=list)  # [{"lf": LF dict, "stats": LFStats dict}]
    candidates: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    created: str | None = None  # ISO date the run started, from run.sqlite (else model.json's mtime)
    guideline: str | None = None  # the LLM-written guideline lines the prompts reused (run.sqlite), if any

    @property
    def class_names(self) -> list[str]:
        return [c["name"] if isinstance(c, dict) else str(c) for c in self.model.task.get("classes", [])]

    @property
    def multi_label(self) -> bool:
        return bool(self.model.task.get("multi_label", False))

    @property
    def cross_fitted(self) -> dict:
        """The cross-fitted seed figures (metrics.json may hold them at top level in older runs)."""
        return self.metrics.get("cross_fitted_seeds") or (self.metrics if "seed_accuracy" in self.metrics else {})

    def silver_probs(self) -> np.ndarray:
        return probs_matrix(self.silver, self.class_names)

    def silver_covered(self) -> np.ndarray:
        return np.array([bool(r.get("covered", False)) for r in self.silver], dtype=bool)

    def heldout_probs(self) -> np.ndarray:
        return probs_matrix(self.heldout, self.class_names)

    def heldout_truth(self) -> np.ndarray:
        """Seed labels: class indices (n,), or multi-hot (n, k) for multi-label tasks."""
        return labels_to_array([r.get("label") for r in self.heldout], self.class_names, self.multi_label)


def probs_matrix(rows: list[dict], class_names: list[str]) -> np.ndarray:
    """(n, k) float array from rows' {"probs": {class: p}}; missing classes count as 0."""
    out = np.zeros((len(rows), len(class_names)))
    for i, row in enumerate(rows):
        probs = row.get("probs") or {}
        out[i] = [float(probs.get(name, 0.0)) for name in class_names]
    return out


def labels_to_array(labels: list, class_names: list[str], multi_label: bool) -> np.ndarray:
    index = {name: c for c, name in enumerate(class_names)}
    if multi_label:
        hot = np.zeros((len(labels), len(class_names)), dtype=np.int8)
        for i, value in enumerate(labels):
            for name in value if isinstance(value, list) else [value]:
                if name in index:
                    hot[i, index[name]] = 1
        return hot
    return np.array([index.get(value, -1) for value in labels], dtype=int)


def load_run(run_dir: str | Path) -> RunArtifacts:
    """Load RUN_DIR; raise InputError when it is missing or is not a run directory."""
    path = Path(run_dir)
    if not path.exists():
        raise InputError("run directory not found", path=path)
    if not path.is_dir():
        raise InputError("not a directory; give the RUN_DIR that `lfagent run --out` wrote", path=path)
    if not (path / "model.json").is_file():
        raise InputError("not a run directory (no model.json); run `lfagent run TASK.yaml --out RUN_DIR` first",
                         path=path)
    return RunArtifacts(path=path, model=load_model(path), silver=read_jsonl(path / "silver.jsonl"),
                        heldout=read_jsonl(path / "heldout.jsonl"), lfs=read_json(path / "lfs.json", []),
                        candidates=read_json(path / "candidates.json", []),
                        metrics=read_json(path / "metrics.json", {}), created=run_created(path),
                        guideline=store_meta(path, "guideline") or None)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a run file; a bad line is an InputError naming file and line (the data layer's reader)."""
    return [row for _, row in iter_rows(path, "jsonl")] if path.is_file() else []


def read_json(path: Path, default):
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None


def run_created(path: Path) -> str | None:
    """The run's start date from run.sqlite's meta table, read-only; else model.json's mtime."""
    try:
        stamp = float(store_meta(path, "created"))
    except (ValueError, TypeError):
        stamp = None
    if stamp is None:
        stamp = (path / "model.json").stat().st_mtime
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def store_meta(path: Path, key: str):
    """A value from run.sqlite's meta table, read-only; None when the store, the key or the value is missing."""
    store = Path(path) / "run.sqlite"
    if not store.is_file():
        return None
    try:
        db = reading_connection(store)
        try:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None
