"""What a finished `generate` output holds, for its dataset card: records, class distribution, coverage.

Read back from the output file a batch at a time, only the label and `covered` columns, so it costs one pass
over those columns and holds one batch in memory, whatever the engine that wrote it.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel

from lfagent.report.summary import class_distribution
from lfagent.rundir.files import RunModel


class OutputTally(BaseModel):
    counts: dict[str, int]  # the card's Counts table
    class_distribution: dict[str, int]
    coverage: float | None  # None: no records


def tally_output(model: RunModel, out: str | Path, fmt: str) -> OutputTally:
    """Count `out` (written by generate with `model`; `fmt` "parquet" or "jsonl")."""
    labeler = model.labeler
    label = "labels" if labeler.multi_label else "label"
    by_class: Counter = Counter()
    n = n_covered = 0
    for rows in _column_batches(Path(out), fmt, label, labeler.multi_label):
        by_class.update(class_distribution(rows, labeler.class_names, labeler.multi_label))
        n += len(rows)
        n_covered += sum(bool(row["covered"]) for row in rows)
    return OutputTally(counts={"records": n, "covered by an LF": n_covered, "fallback (no LF voted)": n - n_covered},
                       class_distribution={name: by_class[name] for name in labeler.class_names},
                       coverage=n_covered / n if n else None)


def _column_batches(out: Path, fmt: str, label: str, multi_label: bool) -> Iterator[list[dict]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(out).iter_batches(columns=[label, "covered"])
    elif out.stat().st_size:  # pyarrow's JSON reader refuses an empty file: no rows, no batches
        import pyarrow.json as pj

        schema = pa.schema([pa.field(label, pa.list_(pa.string()) if multi_label else pa.string()),
                            pa.field("covered", pa.bool_())])
        batches = pj.open_json(out, parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                  unexpected_field_behavior="ignore"))
    else:
        batches = []
    for batch in batches:
        yield batch.to_pylist()
