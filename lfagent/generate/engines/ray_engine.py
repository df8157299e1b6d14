"""Ray engine: windows of streamed batches go through Ray Data (`from_arrow` + `map_batches`).

The driver reads the inputs itself (same batches, ids and error messages as the local engine, and the
same resume keys) and hands Ray a window of batches at a time, so neither the driver nor the object store
holds more than a window. Each window is committed as one unit once all its rows are back, in input
order (`preserve_order`). Without `--address` a local Ray with `workers` CPUs is started; with one, the
command joins that cluster (whose nodes must have lfagent installed).
"""
from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import pyarrow as pa

from lfagent.generate.job import LabelJob
from lfagent.generate.stream import Batch, BatchKey

Commit = Callable[[list[BatchKey], pa.Table], None]
KEY_COLUMNS = ("_file", "_batch")
_sandboxes: dict = {}


def start_ray(workers: int, address: str | None = None) -> bool:
    """Connect to Ray (start a local one unless `address`); True when this call started it."""
    for name, value in (("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0"), ("RAY_USAGE_STATS_ENABLED", "0"),
                        ("RAY_DISABLE_IMPORT_WARNING", "1")):
        os.environ.setdefault(name, value)
    import logging

    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    return True


def run_ray(batches: Iterable[Batch], job: LabelJob, commit: Commit, *, workers: int = 1,
            address: str | None = None, window: int | None = None) -> int:
    """Label every batch on Ray and commit window by window; returns the number of rows labelled."""
    import logging

    import ray
    import ray.data

    started = start_ray(workers, address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    keep_rows = bool(job.predictor().code_columns)
    rows = 0
    try:
        for group in _prefetched(_windows(batches, window or 8 * workers)):
            tables = [batch_table(b, keep_rows) for b in group]
            keys = [b.key for b in group]
            del group
            dataset = ray.data.from_arrow(tables).map_batches(
                _label_blocks, batch_size=None, batch_format="pyarrow", fn_kwargs={"job": job},
                compute=ray.data.TaskPoolStrategy(size=workers), num_cpus=1)
            out = pa.concat_tables(list(dataset.iter_batches(batch_size=None, batch_format="pyarrow")))
            commit(keys, out.drop_columns(list(KEY_COLUMNS)))
            rows += out.num_rows
    finally:
        if started:
            ray.shutdown()
    return rows


def _windows(batches: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    iterator = iter(batches)
    while group := list(islice(iterator, size)):
        yield group


def _prefetched(iterator: Iterator, depth: int = 1) -> Iterator:
    """Read the next window in a thread while Ray labels this one (reading errors are re-raised here)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            items.put(("error", exc))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def batch_table(batch: Batch, keep_rows: bool) -> pa.Table:
    """A batch as an Arrow table (one Ray block); rows travel as JSON text only when code LFs need them."""
    n = len(batch)
    columns = {"_file": pa.array([batch.file_index] * n, pa.int32()),
               "_batch": pa.array([batch.batch_index] * n, pa.int32()),
               "id": pa.array(batch.ids, pa.string()), "text": pa.array(batch.texts, pa.string())}
    if keep_rows:
        columns["row"] = pa.array([json.dumps(r, default=str) for r in batch.rows], pa.string())
    table = pa.table(columns)
    return table.replace_schema_metadata({"path": batch.path, "start": str(batch.start)})


def _label_blocks(block: pa.Table, job: LabelJob) -> pa.Table:
    """Ray UDF: label every batch in the block (normally exactly one) and tag rows with their batch key."""
    predictor = job.predictor()
    pool = _sandbox() if predictor.code_columns else None
    outputs = []
    files, batches = block.column("_file").to_pylist(), block.column("_batch").to_pylist()
    start = 0
    for end in range(1, len(files) + 1):
        if end == len(files) or (files[end], batches[end]) != (files[start], batches[start]):
            part = block.slice(start, end - start)
            rows = [json.loads(r) for r in part.column("row").to_pylist()] if "row" in part.column_names else None
            batch = Batch(files[start], batches[start], "", 0, part.column("id").to_pylist(),
                          part.column("text").to_pylist(), rows)
            labelled = job.label(batch, pool=pool)
            outputs.append(labelled.add_column(0, "_batch", part.column("_batch"))
                           .add_column(0, "_file", part.column("_file")))
            start = end
    return pa.concat_tables(outputs)


def _sandbox():
    """One single-worker sandbox pool per Ray worker process (Ray already spreads work over processes)."""
    if "pool" not in _sandboxes:
        from lfagent.sandbox import SandboxPool

        _sandboxes["pool"] = SandboxPool(workers=1)
    return _sandboxes["pool"]
