"""Input files -> batches of records, streamed: memory holds one batch, never the corpus.

A batch is identified by (file_index, batch_index): the same inputs and batch size always cut the same
batches, which is what lets a killed `generate` resume by skipping the batches already written.
`shards.plan_shards` cuts the very same batches without parsing them, for engines whose workers read.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lfagent.data.dataset import RowChecker
from lfagent.data.readers import detect_format, iter_rows
from lfagent.errors import InputError
from lfagent.task import TaskSpec

BatchKey = tuple[int, int]  # (file index, batch index within the file)


@dataclass
class Batch:
    """Consecutive records of one input file. `rows` (every field) is kept only when code LFs need it."""

    file_index: int
    batch_index: int
    path: str
    start: int  # row position (0-based) of the first record in its file
    ids: list[str]
    texts: list[str]
    rows: list[dict] | None = None

    @property
    def key(self) -> BatchKey:
        return (self.file_index, self.batch_index)

    def __len__(self) -> int:
        return len(self.ids)


def expand_inputs(patterns: Iterable[str | Path]) -> list[Path]:
    """Paths and globs -> sorted existing files (each pattern must match something), duplicates removed."""
    found: list[Path] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True)) if glob.has_magic(pattern) \
            else [pattern]
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise InputError("no input file matches" if glob.has_magic(pattern) else "input file not found",
                             path=pattern)
        for path in files:
            detect_format(path)  # unknown extensions fail now, not after an hour of work
            if path.resolve() not in {p.resolve() for p in found}:
                found.append(path)
    return found


def record_id(row: dict, id_field: str, path: Path, position: int) -> str:
    """The record's id as a string; `<file stem>:<row position>` when the row has none."""
    value = row.get(id_field)
    if value is None or value == "":
        return f"{path.stem}:{position}"
    return str(value)


def iter_batches(task: TaskSpec, paths: list[Path], batch_size: int, *, keep_rows: bool = False,
                 skip: frozenset[BatchKey] | set[BatchKey] = frozenset()) -> Iterator[Batch]:
    """Yield batches of `batch_size` records over all files in order; batches in `skip` are read
    (to keep row positions right) but not yielded."""
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    for file_index, path in enumerate(paths):
        yield from _file_batches(task, Path(path), file_index, batch_size, keep_rows, skip)


def _file_batches(task, path, file_index, batch_size, keep_rows, skip) -> Iterator[Batch]:
    checker = RowChecker(task, path, labeled=False)
    ids, texts, rows = [], [], []
    batch_index, start = 0, 0
    for position, (line, row) in enumerate(iter_rows(path)):
        if (file_index, batch_index) not in skip:
            texts.append(checker.text(line, row))
            ids.append(record_id(row, task.id_field, path, position))
            if keep_rows:
                rows.append(row)
        if position + 1 - start == batch_size:
            if (file_index, batch_index) not in skip:
                yield Batch(file_index, batch_index, str(path), start, ids, texts, rows if keep_rows else None)
            ids, texts, rows = [], [], []
            batch_index, start = batch_index + 1, position + 1
    if ids:
        yield Batch(file_index, batch_index, str(path), start, ids, texts, rows if keep_rows else None)
