"""Batches as shards: where each batch lies in its file, so a worker can read it without the driver.

`plan_shards` makes one cheap pass over the inputs (no JSON parsing, no text checks) and cuts exactly
the batches `stream.iter_batches` cuts: same keys, records, row positions and error line numbers.
`read_shard`, run in a worker, turns one shard back into the Batch `iter_batches` would have yielded,
raising the same InputError (file, line, field) on a bad record.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from lfagent.data.dataset import RowChecker
from lfagent.data.readers import (DecodedLines, csv_encoding, detect_format, iter_rows, jsonl_rows,
                                  open_binary, open_parquet, physical_lines)
from lfagent.errors import InputError
from lfagent.generate.stream import Batch, BatchKey, record_id
from lfagent.task import TaskSpec


@dataclass(frozen=True)
class Shard:
    """One batch's place in its file: small and picklable, the unit of work shipped to a worker."""

    file_index: int
    batch_index: int
    path: str
    fmt: str  # jsonl | csv | parquet | wrench
    start: int  # row position (0-based) of the first record in its file
    count: int  # records in the batch
    line: int = 0  # lines before `offset` (text formats): the base of the batch's line numbers
    offset: int = 0  # byte range [offset, end) holding the batch's records (text formats)
    end: int = 0
    encoding: str = "utf-8"  # CSV only
    header: tuple[str, ...] | None = None  # CSV only: the file's header row
    data: bytes | None = None  # the bytes themselves, for a file that cannot seek (.gz): see _plan_jsonl

    @property
    def key(self) -> BatchKey:
        return (self.file_index, self.batch_index)

    def __len__(self) -> int:
        return self.count


def plan_shards(task: TaskSpec, paths: list[Path], batch_size: int,
                skip: frozenset[BatchKey] | set[BatchKey] = frozenset()) -> Iterator[Shard]:
    """Shards of `batch_size` records over all files in order; keys in `skip` are planned, not yielded."""
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    for file_index, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise InputError("data file not found", path=path)
        fmt = detect_format(path)
        start = 0
        for batch_index, extent in enumerate(_PLANNERS[fmt](path, batch_size)):
            if (file_index, batch_index) not in skip:
                yield Shard(file_index, batch_index, str(path), fmt, start, **extent)
            start += extent["count"]


def _plan_jsonl(path: Path, batch_size: int) -> Iterator[dict]:
    # A .gz file seeks only by decompressing up to the offset, so every shard would pay for the ones
    # before it (quadratic in the file); its shards carry the bytes this pass decompresses anyway.
    carry = path.suffix.lower() == ".gz"
    offset = line = 0  # where the current shard starts, in bytes (decompressed for .gz) and lines
    position = lines = count = 0
    pieces: list[bytes] = []
    with open_binary(path) as handle:
        for piece in physical_lines(handle):
            position += len(piece)
            lines += 1
            if carry:
                pieces.append(piece)
            if _is_jsonl_record(piece):
                count += 1
                if count == batch_size:
                    yield _extent(count, line, offset, position, pieces, carry)
                    offset, line, count, pieces = position, lines, 0, []
    if count:
        yield _extent(count, line, offset, position, pieces, carry)


def _extent(count: int, line: int, offset: int, end: int, pieces: list[bytes], carry: bool) -> dict:
    extent = {"count": count, "line": line, "offset": offset, "end": end}
    return {**extent, "data": b"".join(pieces)} if carry else extent


def _is_jsonl_record(piece: bytes) -> bool:
    """Whether the JSONL reader counts this line as a record (it skips lines that str.strip() empties)."""
    head = piece.lstrip()
    if not head:
        return False
    if head[0] == 0x7B:  # "{": the usual record, no need to decode
        return True
    try:  # unicode whitespace (e.g. U+00A0) is blank to str.strip() but not to bytes.strip()
        return bool(piece.decode("utf-8").strip())
    except UnicodeDecodeError:
        return True  # a record line: its worker raises the reader's "not UTF-8" error there


def _plan_csv(path: Path, batch_size: int) -> Iterator[dict]:
    encoding = csv_encoding(path)
    with open(path, "rb") as handle:
        cursor = DecodedLines(handle, encoding, path)
        reader = csv.reader(cursor)  # reads exactly the lines of one record, never ahead
        header = next(reader, None)
        if header is None:
            return
        context = {"encoding": encoding, "header": tuple(header)}
        offset, line, count = cursor.position, cursor.lines, 0
        for row in reader:
            if row == []:  # DictReader skips empty rows
                continue
            count += 1
            if count == batch_size:
                yield {"count": count, "line": line, "offset": offset, "end": cursor.position, **context}
                offset, line, count = cursor.position, cursor.lines, 0
        if count:
            yield {"count": count, "line": line, "offset": offset, "end": cursor.position, **context}


def _plan_parquet(path: Path, batch_size: int) -> Iterator[dict]:
    return _row_ranges(open_parquet(path).metadata.num_rows, batch_size)


def _plan_wrench(path: Path, batch_size: int) -> Iterator[dict]:
    return _row_ranges(sum(1 for _ in iter_rows(path, "wrench")), batch_size)  # small files; checks every entry


def _row_ranges(total: int, batch_size: int) -> Iterator[dict]:
    for start in range(0, total, batch_size):
        yield {"count": min(batch_size, total - start)}


_PLANNERS = {"jsonl": _plan_jsonl, "csv": _plan_csv, "parquet": _plan_parquet, "wrench": _plan_wrench}


def read_shard(task: TaskSpec, shard: Shard, keep_rows: bool = False) -> Batch:
    """The Batch `iter_batches` yields for this shard's key (rows kept only when `keep_rows`)."""
    path = Path(shard.path)
    checker = RowChecker(task, path, labeled=False)
    ids, texts, rows = [], [], []
    for position, (line, row) in enumerate(_shard_rows(task, shard, keep_rows), start=shard.start):
        texts.append(checker.text(line, row))
        ids.append(record_id(row, task.id_field, path, position))
        if keep_rows:
            rows.append(row)
    if len(ids) != shard.count:
        raise InputError("input file changed while generate was reading it", path=path)
    return Batch(shard.file_index, shard.batch_index, shard.path, shard.start, ids, texts,
                 rows if keep_rows else None)


def _shard_rows(task: TaskSpec, shard: Shard, keep_rows: bool):
    path = Path(shard.path)
    if shard.fmt == "jsonl":
        return jsonl_rows([_read_bytes(path, shard)], path, shard.line + 1)
    if shard.fmt == "csv":
        return _csv_rows(path, shard)
    if shard.fmt == "parquet":
        return _parquet_rows(task, path, shard, keep_rows)
    return islice(iter_rows(path, "wrench"), shard.start, shard.start + shard.count)


def _read_bytes(path: Path, shard: Shard) -> bytes:
    if shard.data is not None:
        return shard.data
    with open_binary(path) as handle:
        handle.seek(shard.offset)
        return handle.read(shard.end - shard.offset)


def _csv_rows(path: Path, shard: Shard) -> Iterator[tuple[int, dict]]:
    data = _read_bytes(path, shard)
    try:
        text = data.decode(shard.encoding)
    except UnicodeDecodeError as exc:  # planning decoded every line, so the file changed since
        raise InputError(f"not {shard.encoding} text ({exc.reason})", path=path) from None
    header = list(shard.header or ())
    reader = csv.DictReader(io.StringIO(text, newline=""), fieldnames=header)
    for row in reader:
        line = shard.line + reader.line_num
        if None in row:
            raise InputError(f"row has more cells than the header's {len(header)}", path=path, line=line)
        yield line, dict(row)


_row_groups: dict = {}  # the last row group read, per worker: consecutive shards often share it


def _parquet_rows(task: TaskSpec, path: Path, shard: Shard, keep_rows: bool) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa

    parquet = open_parquet(path)
    names = parquet.schema_arrow.names
    columns = None  # every column: code LFs read any field, and a missing text field's error lists them
    if not keep_rows and task.text_field in names:
        columns = [c for c in dict.fromkeys((task.text_field, task.id_field)) if c in names]
    stop, first, pieces = shard.start + shard.count, 0, []
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        if first < stop and first + size > shard.start:
            key = (str(path), path.stat().st_mtime_ns, group, tuple(columns or ()))
            if key not in _row_groups:
                _row_groups.clear()
                _row_groups[key] = parquet.read_row_group(group, columns=columns)
            low = max(shard.start - first, 0)
            pieces.append(_row_groups[key].slice(low, min(stop - first, size) - low))
        first += size
    rows = pa.concat_tables(pieces).to_pylist() if pieces else []
    return zip(range(shard.start + 1, stop + 1), rows)

