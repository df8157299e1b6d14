"""Local engine: batches labelled in this process (1 worker) or in a pool of N processes.

Code LFs run in the sandbox pool (N isolated workers) from this process; declarative LFs, the label model
and output formatting run in the process pool. At most `window` batches are in flight, so memory is
bounded whatever the corpus size (Pool.imap would read the whole input ahead).
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyarrow as pa

from lfagent.apply import apply_lfs
from lfagent.generate.job import LabelJob
from lfagent.generate.stream import Batch, BatchKey

Commit = Callable[[list[BatchKey], pa.Table], None]
_job: LabelJob | None = None


def run_local(batches: Iterable[Batch], job: LabelJob, commit: Commit, *, workers: int = 1,
              window: int | None = None) -> int:
    """Label every batch and commit it; returns the number of rows labelled."""
    predictor = job.predictor()
    pool = None
    if predictor.code_columns:
        from lfagent.sandbox import SandboxPool

        pool = SandboxPool(workers=workers)
    try:
        if workers <= 1:
            return _run_inline(batches, job, commit, pool)
        return _run_pool(batches, job, commit, pool, workers, window or 2 * workers)
    finally:
        if pool is not None:
            pool.close()


def _run_inline(batches, job: LabelJob, commit: Commit, pool) -> int:
    rows = 0
    for batch in batches:
        commit([batch.key], job.label(batch, pool=pool))
        rows += len(batch)
    return rows


def _run_pool(batches, job: LabelJob, commit: Commit, pool, workers: int, window: int) -> int:
    rows = 0
    in_flight: deque = deque()
    # fork starts a worker in milliseconds (spawn re-imports scipy & co. for seconds); but never fork a
    # parent that holds sandbox pipes and threads.
    context = multiprocessing.get_context("spawn" if pool is not None else "fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(job,)) as executor:
        for batch in batches:
            code_votes = _code_votes(job, batch, pool) if pool is not None else None
            if code_votes is not None:
                batch.rows = None  # the worker needs only the texts now
            in_flight.append((batch.key, len(batch), executor.submit(_label_in_worker, batch, code_votes)))
            del batch
            while len(in_flight) >= window:
                rows += _commit_oldest(in_flight, commit)
        while in_flight:
            rows += _commit_oldest(in_flight, commit)
    return rows


def _commit_oldest(in_flight: deque, commit: Commit) -> int:
    key, n, future = in_flight.popleft()
    commit([key], future.result())
    return n


def _code_votes(job: LabelJob, batch: Batch, pool) -> np.ndarray:
    predictor = job.predictor()
    code_lfs = [predictor.lfs[j] for j in predictor.code_columns]
    return apply_lfs(code_lfs, batch.texts, predictor.class_names, rows=batch.rows, pool=pool,
                     text_field=predictor.text_field).L


def _init_worker(job: LabelJob) -> None:
    global _job
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # N processes share the cores; small dense algebra is faster on one thread
    _job = job


def _label_in_worker(batch: Batch, code_votes: np.ndarray | None) -> pa.Table:
    return _job.label(batch, code_votes=code_votes)
