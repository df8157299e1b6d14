"""Turn rows into validated record tables: ids, texts, and (for seeds) label arrays."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lfagent.data.readers import iter_rows
from lfagent.errors import InputError
from lfagent.task import TaskSpec


@dataclass
class Records:
    """An in-memory table of records. `rows` keep every field so code LFs can read them."""

    ids: list
    texts: list[str]
    rows: list[dict]
    source: str = ""
    # Seeds only: class index per record (n,), or multi-hot (n, k) for multi-label tasks.
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index) -> "Records":
        index = np.asarray(index, dtype=int)
        return Records(
            ids=[self.ids[i] for i in index],
            texts=[self.texts[i] for i in index],
            rows=[self.rows[i] for i in index],
            source=self.source,
            y=None if self.y is None else self.y[index],
        )


@dataclass
class RowChecker:
    """Validates one row at a time; keeps the ids seen to catch duplicates."""

    task: TaskSpec
    path: Path
    labeled: bool
    seen_ids: set = field(default_factory=set)

    def text(self, line: int, row: dict) -> str:
        field_name = self.task.text_field
        if field_name not in row:
            raise InputError(f"missing text field; row has {sorted(row)[:8]}", path=self.path, line=line,
                             field=field_name)
        value = row[field_name]
        if not isinstance(value, str):
            if value is None or isinstance(value, (dict, list)):
                raise InputError(f"text must be a string, got {type(value).__name__}", path=self.path,
                                 line=line, field=field_name)
            value = str(value)
        return value

    def record_id(self, line: int, row: dict, position: int):
        rid = row.get(self.task.id_field, position)
        if isinstance(rid, (dict, list)) or rid is None:
            raise InputError("id must be a string or a number", path=self.path, line=line,
                             field=self.task.id_field)
        if rid in self.seen_ids:
            raise InputError(f"duplicate id {rid!r}", path=self.path, line=line, field=self.task.id_field)
        self.seen_ids.add(rid)
        return rid

    def label(self, line: int, row: dict):
        """Class index, or a multi-hot row for multi-label tasks."""
        name = self.task.label_field
        if name not in row:
            raise InputError("missing label", path=self.path, line=line, field=name)
        value = row[name]
        classes = self.task.class_names
        if self.task.multi_label:
            values = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
            hot = np.zeros(len(classes), dtype=np.int8)
            for item in values:
                hot[self._index(str(item).strip(), line, name)] = 1
            return hot
        if isinstance(value, list):
            raise InputError("a list of labels needs `multi_label: true` in the task", path=self.path,
                             line=line, field=name)
        return self._index(str(value), line, name)

    def _index(self, value: str, line: int, field_name: str) -> int:
        classes = self.task.class_names
        if value in classes:
            return classes.index(value)
        raise InputError(f"unknown class {value!r}; expected one of {classes}", path=self.path, line=line,
                         field=field_name)


def load_records(task: TaskSpec, relative: str, *, labeled: bool) -> Records:
    """Read a whole file named in the task (seeds, unlabeled or test)."""
    path = task.resolve(relative)
    checker = RowChecker(task, path, labeled)
    ids, texts, rows, labels = [], [], [], []
    for position, (line, row) in enumerate(iter_rows(path)):
        texts.append(checker.text(line, row))
        ids.append(checker.record_id(line, row, position))
        rows.append(row)
        if labeled:
            labels.append(checker.label(line, row))
    if not ids:
        raise InputError("file has no records", path=path)
    y = np.asarray(labels) if labeled else None
    return Records(ids=ids, texts=texts, rows=rows, source=str(path), y=y)


def load_seeds(task: TaskSpec) -> Records:
    """The seeds. A class with no seed example is allowed (see `unseeded_classes`): the session warns."""
    return load_records(task, task.seeds, labeled=True)


def unseeded_classes(task: TaskSpec, seeds: Records) -> list[str]:
    """Classes no seed carries (multi-label: no seed lists them), in task order."""
    y = np.asarray(seeds.y)
    present = y.sum(axis=0) if task.multi_label else np.bincount(y.astype(int), minlength=task.cardinality)
    return [c for c, count in zip(task.class_names, np.atleast_1d(present)) if count == 0]


def load_unlabeled(task: TaskSpec) -> Records:
    if not task.unlabeled:
        raise InputError("the task names no `unlabeled` file", path=task.base_dir / "task.yaml",
                         field="unlabeled")
    return load_records(task, task.unlabeled, labeled=False)


def iter_record_batches(task: TaskSpec, paths: Iterable[Path], batch_size: int,
                        ) -> Iterator[tuple[Path, int, Records]]:
    """Stream (path, first_row_position, batch) over many files; memory stays one batch."""
    for path in paths:
        checker = RowChecker(task, Path(path), labeled=False)
        ids, texts, rows = [], [], []
        start = 0
        for position, (line, row) in enumerate(iter_rows(path)):
            texts.append(checker.text(line, row))
            rid = row.get(task.id_field, position)
            ids.append(rid)
            rows.append(row)
            if len(ids) >= batch_size:
                yield Path(path), start, Records(ids, texts, rows, str(path))
                start = position + 1
                ids, texts, rows = [], [], []
        if ids:
            yield Path(path), start, Records(ids, texts, rows, str(path))
