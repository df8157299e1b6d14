"""Local engine: batches labelled in this process (1 worker) or in a pool of N processes.

Work items are Batches (records already read) or Shards (where a batch lies in its file: the pool worker
reads it). Declarative LFs, the label model and the output encoding run in the workers, so this process
only plans, commits bytes, and (with code LFs) drives the sandbox pool, which must stay here. At most
`window` items are in flight, so memory is bounded whatever the corpus size (Pool.imap would read the
whole input ahead).
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.util
import sys
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from lfagent.sandbox.apply import apply_lfs
from lfagent.generate.job import LabelJob, one_thread_per_process, release
from lfagent.generate.shards import Shard, read_shard
from lfagent.generate.stream import Batch, BatchKey
from lfagent.generate.writer import encode
from lfagent.task import TaskSpec
from lfagent.waiting import result_responsively

Commit = Callable[[list[BatchKey], int, bytes], None]  # (keys, rows, encoded rows): ResumableWriter.commit_encoded
_worker: dict = {}


def run_local(items: Iterable[Batch | Shard], job: LabelJob, commit: Commit, *, task: TaskSpec | None = None,
              fmt: str = "parquet", workers: int = 1, window: int | None = None, progress=None) -> int:
    """Label every item, encode it as `fmt` and commit it; returns the number of rows labelled.
    `task` is needed only to read Shards."""
    pool = None
    if job.model().labeler.code_columns:
        from lfagent.sandbox import SandboxPool

        pool = SandboxPool(workers=workers)
    try:
        if workers <= 1:
            return _run_inline(items, job, commit, pool, task, fmt, progress)
        return _run_pool(items, job, commit, pool, task, fmt, workers, window or 2 * workers)
    finally:
        if pool is not None:
            pool.close()
        release()  # this process's encoders (inline runs, and the model read for planning)


def _run_inline(items, job: LabelJob, commit: Commit, pool, task, fmt: str, progress=None) -> int:
    rows = 0
    for item in items:
        batch = _as_batch(task, item, keep_rows=pool is not None)
        commit([batch.key], len(batch), encode(job.label(batch, pool=pool, progress=progress), fmt))
        rows += len(batch)
    return rows


def _run_pool(items, job: LabelJob, commit: Commit, pool, task, fmt: str, workers: int, window: int) -> int:
    rows = 0
    in_flight: deque = deque()
    # fork starts a worker in milliseconds (spawn re-imports scipy & co. for seconds); but never fork a
    # parent that holds sandbox pipes and threads, or a CUDA context (a forked child cannot use it).
    context = multiprocessing.get_context("spawn" if pool is not None or _cuda_started() else "fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(job, task, fmt)) as executor, _cancel_on_interrupt(executor):
        for item in items:
            code_votes = None
            if pool is not None:  # code LFs run here, in the sandbox pool; the worker needs only texts
                item = _as_batch(task, item, keep_rows=True)
                code_votes = _code_votes(job, item, pool)
                item.rows = None
            in_flight.append((item.key, len(item), executor.submit(_label_in_worker, item, code_votes)))
            del item
            while len(in_flight) >= window:
                rows += _commit_oldest(in_flight, commit)
        while in_flight:
            rows += _commit_oldest(in_flight, commit)
    return rows


def _cuda_started() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _commit_oldest(in_flight: deque, commit: Commit) -> int:
    key, n, future = in_flight.popleft()
    commit([key], n, result_responsively(future))  # Ctrl-C is noticed while the batch is in flight
    return n


@contextmanager
def _cancel_on_interrupt(executor: ProcessPoolExecutor):
    """On Ctrl-C, drop the queued batches instead of labelling them first (the journal has the rest)."""
    try:
        yield
    except KeyboardInterrupt:
        executor.shutdown(wait=False, cancel_futures=True)
        raise


def _as_batch(task: TaskSpec | None, item: Batch | Shard, keep_rows: bool) -> Batch:
    return read_shard(task, item, keep_rows) if isinstance(item, Shard) else item


def _code_votes(job: LabelJob, batch: Batch, pool) -> np.ndarray:
    labeler = job.model().labeler
    code_lfs = [labeler.lfs[j] for j in labeler.code_columns]
    return apply_lfs(code_lfs, batch.texts, labeler.class_names, rows=batch.rows, pool=pool,
                     text_field=labeler.text_field).L


def _init_worker(job: LabelJob, task: TaskSpec | None, fmt: str) -> None:
    one_thread_per_process()
    _worker.update(job=job, task=task, fmt=fmt)
    # A pool worker leaves through os._exit, past atexit: close its cache connections on the way out.
    multiprocessing.util.Finalize(None, release, exitpriority=10)


def _label_in_worker(item: Batch | Shard, code_votes: np.ndarray | None) -> bytes:
    batch = _as_batch(_worker["task"], item, keep_rows=False)
    return encode(_worker["job"].label(batch, code_votes=code_votes), _worker["fmt"])
