"""Resumable output for `generate`: a batch counts as done only once its rows are durably on disk.

A sidecar journal, OUT.progress.json, records the committed batch keys; it is rewritten atomically
(write, fsync, rename) and only *after* the batch's rows have been fsync'ed. After a kill -9 the journal
is the truth:
- JSONL: rows are appended to OUT.jsonl; the journal keeps the byte length after the last committed
  batch, and a resume truncates any partial trailing data past it.
- Parquet: each committed unit is a part file in OUT.parquet.parts/ (written to a temporary name, fsync'ed,
  renamed); parts the journal does not list are deleted on resume. When every batch is done the parts are
  merged, row group by row group in input order, into one OUT.parquet and the parts folder is removed.
The journal stays after completion (marked complete) so that rerunning a finished command does nothing.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lfagent.errors import InputError
from lfagent.generate.stream import BatchKey

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def output_format(out: Path) -> str:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError("output must end in .parquet or .jsonl", path=out)
    return fmt


def encode(table: pa.Table, fmt: str) -> bytes:
    """Output rows as the bytes a commit writes: a whole Parquet part file, or JSON lines (UTF-8).
    Pure, so engines run it in their workers and the committing process only writes bytes."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in table.to_pylist()).encode("utf-8")
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Journal:
    """OUT.progress.json: the signature of the command and the batches it has committed."""

    def __init__(self, path: Path, signature: dict):
        self.path = path
        self.signature = signature
        self.done: set[BatchKey] = set()
        self.rows = 0
        self.nbytes = 0
        self.parts: list[str] = []
        self.complete = False

    def load(self) -> bool:
        """Read an existing journal (False if none); refuses one written by a different command."""
        if not self.path.is_file():
            return False
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError:
            raise InputError("progress journal is damaged; delete it and the output to start over",
                             path=self.path) from None
        if state.get("signature") != self.signature:
            raise InputError("output was started by a different generate command (run, inputs, batch size or "
                             "--votes differ); delete it and its .progress.json, or choose another --out",
                             path=self.path)
        self.done = {tuple(k) for k in state["done"]}
        self.rows, self.nbytes = state["rows"], state["bytes"]
        self.parts, self.complete = state["parts"], state["complete"]
        return True

    def save(self) -> None:
        state = {"signature": self.signature, "complete": self.complete, "rows": self.rows, "bytes": self.nbytes,
                 "parts": self.parts, "done": sorted(self.done)}
        _write_durably(self.path, json.dumps(state).encode())


class ResumableWriter:
    """commit(keys, table) (or commit_encoded with `encode`'s bytes) appends rows durably and journals
    `keys`; finish() seals the output."""

    def __init__(self, out: str | Path, signature: dict, *, overwrite: bool = False):
        self.out = Path(out)
        self.format = output_format(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.out.with_name(self.out.name + ".progress.json"), signature)
        self.parts_dir = self.out.with_name(self.out.name + ".parts")
        if overwrite:
            self._remove_all()
        resumed = self.journal.load()
        if not resumed and (self.out.exists() or self.parts_dir.exists()):
            raise InputError("output exists and has no progress journal; delete it or pass --overwrite",
                             path=self.out)
        if not resumed:
            self.journal.save()  # before any output exists, so a kill at any point leaves a journal
        self.resumed_batches = len(self.journal.done)
        if not self.journal.complete:
            self._drop_uncommitted()

    @property
    def done_keys(self) -> set[BatchKey]:
        return set(self.journal.done)

    @property
    def complete(self) -> bool:
        return self.journal.complete

    def _remove_all(self) -> None:
        for path in (self.out, self.journal.path):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def _drop_uncommitted(self) -> None:
        if self.format == "jsonl":
            with open(self.out, "ab") as handle:  # creates the file on a fresh start
                handle.truncate(self.journal.nbytes)
                os.fsync(handle.fileno())
            return
        self.parts_dir.mkdir(exist_ok=True)
        keep = set(self.journal.parts)
        for path in self.parts_dir.iterdir():
            if path.name not in keep:
                path.unlink()

    def commit(self, keys: list[BatchKey], table: pa.Table) -> None:
        self.commit_encoded(keys, table.num_rows, encode(table, self.format))

    def commit_encoded(self, keys: list[BatchKey], num_rows: int, payload: bytes) -> None:
        """Commit rows already encoded by `encode` (engines encode in their workers)."""
        if self.format == "jsonl":
            self._append_jsonl(payload)
        else:
            self._write_part(keys, payload)
        self.journal.done.update(keys)
        self.journal.rows += num_rows
        self.journal.save()

    def _append_jsonl(self, payload: bytes) -> None:
        with open(self.out, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
            self.journal.nbytes = handle.tell()

    def _write_part(self, keys: list[BatchKey], payload: bytes) -> None:
        first = min(keys)
        name = f"part-{first[0]:06d}-{first[1]:09d}.parquet"
        _write_durably(self.parts_dir / name, payload)
        self.journal.parts.append(name)

    def finish(self, schema: pa.Schema) -> None:
        """Seal the output: merge Parquet parts into OUT.parquet; mark the journal complete."""
        if self.journal.complete:
            return
        if self.format == "parquet":
            self._merge_parts(schema)
        self.journal.complete = True
        self.journal.save()
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def _merge_parts(self, schema: pa.Schema) -> None:
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        # Part names sort in input order (file index, then batch index), whatever order engines finish in.
        with open(tmp, "wb") as handle:
            with pq.ParquetWriter(handle, schema) as writer:
                for name in sorted(self.journal.parts):
                    for group in range(pq.ParquetFile(self.parts_dir / name).num_row_groups):
                        writer.write_table(pq.ParquetFile(self.parts_dir / name).read_row_group(group))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.out)
        _fsync_dir(self.out.parent)
