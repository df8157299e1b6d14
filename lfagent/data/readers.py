"""Row readers for JSONL (plain or .gz), CSV, Parquet and WRENCH JSON. Each yields (line, row) so errors
can point home.

`line` is the 1-based line in a JSONL file, the 1-based data row in a CSV (header is line 1, so the first
row is line 2), the 1-based row in a Parquet file, and the 1-based entry in a WRENCH file.
"""
from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lfagent.errors import InputError

FORMATS = ("jsonl", "csv", "parquet", "wrench")


def detect_format(path: Path) -> str:
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    if suffixes.endswith(".csv"):
        return "csv"
    if suffixes.endswith((".parquet", ".pq")):
        return "parquet"
    if suffixes.endswith(".json"):
        return "wrench" if _looks_like_wrench(path) else "jsonl"
    raise InputError("unknown file type; use .jsonl (or .jsonl.gz), .csv, .parquet or WRENCH .json", path=path)


def _looks_like_wrench(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    # A WRENCH file is one JSON object of objects; JSONL starts each line with its own object.
    return head.startswith(b"{") and (b'"data"' in head or head.count(b"\n") == 0 or head[1:2] in (b"\n", b" "))


def iter_rows(path: str | Path, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line, row) from any supported file, streaming where the format allows."""
    path = Path(path)
    if not path.is_file():
        raise InputError("data file not found", path=path)
    fmt = fmt or detect_format(path)
    reader = {"jsonl": _iter_jsonl, "csv": _iter_csv, "parquet": _iter_parquet, "wrench": _iter_wrench}[fmt]
    yield from reader(path)


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes for reading; a .gz file is decompressed as it is read (a bad one is an InputError)."""
    if path.suffix.lower() != ".gz":
        with open(path, "rb") as handle:
            yield handle
        return
    try:
        with gzip.open(path, "rb") as handle:
            yield handle
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # not gzip data, or cut short
        raise InputError(f"cannot decompress: {exc}", path=path) from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open_binary(path) as handle:
        yield from jsonl_rows(_whole_line_blocks(handle), path)


def _whole_line_blocks(handle, size: int = 1 << 20) -> Iterator[bytes]:
    while block := handle.read(size):
        yield block + handle.readline()  # a block ends at a line end, so no line or character is cut


def jsonl_rows(blocks: Iterable[bytes], path: Path, first_line: int = 1) -> Iterator[tuple[int, dict]]:
    """(line, row) for each non-blank line of `blocks`, consecutive runs of whole lines of a JSONL file
    whose first line is `first_line`. Lines are numbered as text-mode readline numbers them (CRLF and a
    lone CR end a line too); a byte that is not UTF-8 is reported on its own line, after the rows before it."""
    number, loads = first_line, json.loads
    for data in blocks:
        try:
            text, bad = data.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            good = max(data.rfind(b"\n", 0, exc.start), data.rfind(b"\r", 0, exc.start)) + 1
            text, bad = data[:good].decode("utf-8"), exc
        lines = split_lines(text)
        for line_number, line in enumerate(lines, start=number):
            if line.strip():
                try:
                    row = loads(line)  # inline, not a helper: this loop runs once per record
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON: {exc.msg} at column {exc.colno}", path=path,
                                     line=line_number) from None
                if not isinstance(row, dict):
                    raise InputError(f"expected a JSON object, got {type(row).__name__}", path=path,
                                     line=line_number)
                yield line_number, row
        number += len(lines)
        if bad is not None:
            raise InputError(f"not UTF-8 text ({bad.reason})", path=path, line=number)


def split_lines(text: str) -> list[str]:
    """Lines of `text` without their ends, split where text-mode (universal newline) readline splits."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def csv_encoding(path: Path) -> str:
    """UTF-8, unless the first MB does not decode: then latin-1 (the classic spam corpora ship it)."""
    try:
        with open(path, encoding="utf-8") as probe:
            probe.read(1 << 20)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def physical_lines(handle) -> Iterator[bytes]:
    """The lines of a binary file with their ends, split where text-mode readline splits: a lone CR ends
    a line too (rare, so pieces are split only when one is present)."""
    for raw in handle:
        yield from raw.splitlines(keepends=True) if b"\r" in raw else (raw,)


class DecodedLines:
    """Physical lines of a binary file, decoded, as csv.reader reads them; counts bytes and lines."""

    def __init__(self, handle, encoding: str, path: Path):
        self.handle, self.encoding, self.path = handle, encoding, path
        self.position = self.lines = 0

    def __iter__(self) -> Iterator[str]:
        for piece in physical_lines(self.handle):
            self.position += len(piece)
            self.lines += 1
            try:
                yield piece.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise InputError(f"not {self.encoding} text ({exc.reason})", path=self.path,
                                 line=self.lines) from None


def _iter_csv(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as handle:  # decoded line by line, so a bad byte far into the file names its line
        reader = csv.DictReader(DecodedLines(handle, csv_encoding(path), path))
        if reader.fieldnames is None:
            return
        for row in reader:
            if None in row:
                raise InputError(f"row has more cells than the header's {len(reader.fieldnames)}",
                                 path=path, line=reader.line_num)
            yield reader.line_num, dict(row)


def open_parquet(path: Path):
    """A pyarrow ParquetFile, or an InputError naming the file."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"not a readable Parquet file: {exc}", path=path) from None


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    parquet = open_parquet(path)
    number = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _iter_wrench(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError("expected a WRENCH JSON object {id: {data, label, weak_labels}}", path=path)
    names = _wrench_label_names(path)
    for number, (key, entry) in enumerate(data.items(), start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
            raise InputError("WRENCH entry lacks a 'data' object", path=path, line=number, field=str(key))
        row = {"id": key, **entry["data"]}
        if "label" in entry:
            label = entry["label"]
            row["label"] = names.get(label, label) if names else label
        if "weak_labels" in entry:
            row["weak_labels"] = entry["weak_labels"]
        yield number, row


def _wrench_label_names(path: Path) -> dict[int, str]:
    label_file = path.parent / "label.json"
    if not label_file.is_file():
        return {}
    mapping = json.loads(label_file.read_text(encoding="utf-8"))
    return {int(k): str(v) for k, v in mapping.items()}
