"""Ray engine: one Ray Data dataset of shards; the workers read, label and encode, the driver commits.

The driver plans shards (`shards.plan_shards`: where each batch lies in its file, one cheap pass with no
parsing) and builds one dataset over them (`from_items`, a few consecutive shards per block). A .gz file
cannot be read from an offset, so its shards carry their bytes: the driver holds such a file decompressed.
`map_batches` runs `ShardLabeler` in a pool of `workers` actors: for each shard, an actor reads its records
from the file, labels them and encodes the output (a Parquet part or JSON lines). Only those bytes come
back, shard by shard in input order (`preserve_order`), and the driver appends them durably with
`ResumableWriter.commit_encoded`; keys already committed (resume) are not planned. A bad record comes
back as data and is raised here as the InputError the local engine raises, once every shard before it
is committed.
Without `--address` a local Ray with `workers` CPUs is started; with one, the command joins that cluster
(whose nodes must have lfagent installed and see the input paths).
"""
from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from lfagent.errors import InputError
from lfagent.generate.job import LabelJob
from lfagent.generate.shards import Shard, read_shard
from lfagent.generate.stream import BatchKey
from lfagent.generate.writer import encode
from lfagent.task import TaskSpec

Commit = Callable[[list[BatchKey], int, bytes], None]  # ResumableWriter.commit_encoded
RECORDS_PER_TASK = 40_000
RESULTS = pa.schema([pa.field("file", pa.int64()), pa.field("batch", pa.int64()), pa.field("rows", pa.int64()),
                     pa.field("payload", pa.large_binary()), pa.field("error", pa.string())])


def start_ray(workers: int, address: str | None = None) -> bool:
    """Connect to Ray (start a local one unless `address`); True when this call started it."""
    for name, value in (("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0"), ("RAY_USAGE_STATS_ENABLED", "0"),
                        ("RAY_DISABLE_IMPORT_WARNING", "1")):
        os.environ.setdefault(name, value)
    import logging

    from lfagent.errors import require

    ray = require("ray", extra="ray", feature="generate --engine ray")
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    return True


def run_ray(shards: Iterable[Shard], task: TaskSpec, job: LabelJob, commit: Commit, *, fmt: str,
            workers: int = 1, address: str | None = None) -> int:
    """Label every shard on Ray and commit each in input order; returns the number of rows labelled."""
    planned: list[Shard] = []
    late: InputError | None = None
    try:
        for shard in shards:
            planned.append(shard)
    except InputError as exc:  # e.g. an unreadable 3rd file: label the shards before it first
        late = exc
    rows = 0
    if planned:
        started = start_ray(workers, address)
        try:
            rows = _label_on_ray(planned, task, job, commit, fmt, workers)
        finally:
            if started:
                import ray

                ray.shutdown()
    if late is not None:
        raise late
    return rows


def _label_on_ray(shards: list[Shard], task: TaskSpec, job: LabelJob, commit: Commit, fmt: str,
                  workers: int) -> int:
    import logging

    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # JSONL appends and error order follow the input
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = [{"shard": pickle.dumps(shard)} for shard in shards]
    # Blocks of several shards (~RECORDS_PER_TASK records): an actor's queue of 2 tasks runs dry between
    # Ray Data's scheduling-loop turns when each task is short (a 10,000-record shard takes ~0.1 s here);
    # yet at least 4 blocks per worker, so the last ones still spread over every worker.
    per_block = max(1, min(-(-RECORDS_PER_TASK // max(s.count for s in shards)), len(shards) // (4 * workers)))
    # An actor pool, not a task pool: each actor has its next shard queued, so it never waits ~0.1 s for
    # the scheduling loop between shards as a new task does; and it builds its labeler once.
    # max_restarts=0: a crashed actor fails the command (a rerun resumes); Ray's default (restart forever,
    # with arguments kept in the object store) logs an error line on every run. Ray 2.60 flags the
    # keyword as deprecated but offers no other way (pinned in pyproject.toml).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // per_block)).map_batches(
            ShardLabeler, batch_size=None, batch_format="pyarrow", zero_copy_batch=True,
            fn_constructor_kwargs={"task": task, "job": job, "fmt": fmt},
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, max_restarts=0)
    rows = 0
    for block in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        for result in block.to_pylist():
            if result["error"] is not None:
                raise InputError(**json.loads(result["error"]))
            commit([(result["file"], result["batch"])], result["rows"], result["payload"])
            rows += result["rows"]
    return rows


class ShardLabeler:
    """Ray Data UDF, one per actor (worker process): read, label and encode each shard of a block, one
    output block per shard. A bad record comes back as an error row, so the driver commits every shard
    before it and then raises it."""

    def __init__(self, task: TaskSpec, job: LabelJob, fmt: str):
        from lfagent.generate.job import one_thread_per_process

        self.limits = one_thread_per_process()  # `workers` processes share the cores
        self.task, self.job, self.fmt = task, job, fmt
        self.pool = None
        if job.model().labeler.code_columns:  # one single-worker sandbox per actor: Ray spreads the work
            from lfagent.sandbox import SandboxPool

            self.pool = SandboxPool(workers=1)

    def __del__(self):
        # Ray Data drops the UDF when its actor pool shuts down gracefully: close what the actor opened, as
        # local pool workers do on exit (open cache connections leave embeddings.sqlite-wal/-shm behind).
        from lfagent.generate.job import release

        release()
        if getattr(self, "pool", None) is not None:  # None also when __init__ failed before making it
            self.pool.close()

    def __call__(self, block: pa.Table) -> Iterator[pa.Table]:
        # One output per shard, yielded as soon as it is done: the driver commits it while the actor
        # labels the next, rather than a whole block at once.
        for data in block.column("shard").to_pylist():
            yield pa.Table.from_pylist([self._label(pickle.loads(data))], schema=RESULTS)

    def _label(self, shard: Shard) -> dict:
        result = {"file": shard.file_index, "batch": shard.batch_index, "rows": shard.count, "payload": b"",
                  "error": None}
        try:
            batch = read_shard(self.task, shard, keep_rows=self.pool is not None)
            result["payload"] = encode(self.job.label(batch, pool=self.pool), self.fmt)
        except InputError as exc:
            result["error"] = json.dumps({"message": exc.reason, "path": exc.path, "line": exc.line,
                                          "field": exc.field})
        return result
