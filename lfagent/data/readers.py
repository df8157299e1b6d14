"""Row readers for JSONL, CSV, Parquet and WRENCH JSON. Each yields (line, row) so errors can point home.

`line` is the 1-based line in a JSONL file, the 1-based data row in a CSV (header is line 1, so the first
row is line 2), the 1-based row in a Parquet file, and the 1-based entry in a WRENCH file.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from lfagent.errors import InputError

FORMATS = ("jsonl", "csv", "parquet", "wrench")


def detect_format(path: Path) -> str:
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "jsonl"
    if suffixes.endswith(".csv"):
        return "csv"
    if suffixes.endswith((".parquet", ".pq")):
        return "parquet"
    if suffixes.endswith(".json"):
        return "wrench" if _looks_like_wrench(path) else "jsonl"
    raise InputError("unknown file type; use .jsonl, .csv, .parquet or WRENCH .json", path=path)


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


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8", errors="strict") as handle:
        number = 0
        while True:
            try:
                text = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text ({exc.reason})", path=path, line=number + 1) from None
            if not text:
                return
            number += 1
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg} at column {exc.colno}", path=path, line=number) from None
            if not isinstance(row, dict):
                raise InputError(f"expected a JSON object, got {type(row).__name__}", path=path, line=number)
            yield number, row


def _iter_csv(path: Path) -> Iterator[tuple[int, dict]]:
    encoding = "utf-8"
    try:
        with open(path, encoding="utf-8") as probe:
            probe.read(1 << 20)
    except UnicodeDecodeError:
        encoding = "latin-1"  # the classic spam corpora ship latin-1
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return
        for row in reader:
            if None in row:
                raise InputError(f"row has more cells than the header's {len(reader.fieldnames)}",
                                 path=path, line=reader.line_num)
            yield reader.line_num, dict(row)


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"not a readable Parquet file: {exc}", path=path) from None
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
