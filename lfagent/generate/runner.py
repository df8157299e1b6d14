"""`generate`: apply a run's LFs and label model to corpora of any size, resumably."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from lfagent.data.embed import default_cache_dir
from lfagent.rundir.files import RunModel, load_model
from lfagent.errors import InputError
from lfagent.fit.fewshot_views import encoder_dir
from lfagent.generate.job import LabelJob
from lfagent.generate.label_batch import output_schema
from lfagent.generate.shards import plan_shards
from lfagent.generate.stream import expand_inputs, iter_batches
from lfagent.generate.tally import tally_output
from lfagent.generate.writer import ResumableWriter
from lfagent.report.card import card_path_for, write_dataset_card

ENGINES = ("local", "ray")


class GenerateSummary(BaseModel):
    out: str
    rows_written: int  # by this invocation
    rows_total: int  # in the output, including batches committed by earlier (killed) invocations
    batches_resumed: int
    already_complete: bool
    seconds: float  # labelling time, engine start included
    steady_records_per_s: float = 0.0  # first to last commit: excludes engine start, warm-up and shutdown
    card: str | None = None  # the dataset card beside the output (OUT.card.md); None for an end model


def input_signature(paths: list[Path]) -> list[list]:
    """Inputs as (path, size, mtime): a resume over files that changed would mix two corpora."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def generate(run_dir: str | Path, inputs: list[str | Path], out: str | Path, *, engine: str = "local",
             workers: int = 1, address: str | None = None, batch_size: int = 10_000, votes: bool = False,
             overwrite: bool = False, progress: Callable[[str], None] | None = None) -> GenerateSummary:
    """Label every record of `inputs` (paths or globs) with the run in `run_dir` into `out`, and write its
    dataset card beside it (OUT.card.md).

    >>> generate("runs/yt", ["big/*.jsonl"], "silver.parquet", engine="ray", workers=2)  # doctest: +SKIP
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use one of {ENGINES}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    model = load_model(run_dir)
    task = model.task_spec()
    paths = expand_inputs(inputs)
    job = LabelJob.create(model.model_dump_json(), votes, str(default_cache_dir() / "embeddings.sqlite"),
                          expert_dir=str(encoder_dir(Path(run_dir).resolve())))
    signature = {"run_id": model.run_id, "lf_set_hash": model.lf_set_hash, "inputs": input_signature(paths),
                 "batch_size": batch_size, "votes": votes}
    writer = ResumableWriter(out, signature, overwrite=overwrite)
    say = progress or (lambda message: None)
    if writer.complete:
        card = card_path_for(out)  # an output finished before generate wrote cards gets one now
        return GenerateSummary(out=str(out), rows_written=0, rows_total=writer.journal.rows,
                               batches_resumed=writer.resumed_batches, already_complete=True, seconds=0.0,
                               card=str(card) if card.is_file() else write_card(run_dir, model, writer))
    if writer.resumed_batches:
        say(f"resuming: {writer.resumed_batches} batches ({writer.journal.rows} rows) already written")
    keep_rows, skip = bool(model.labeler.code_columns), writer.done_keys
    from lfagent.counting import counter

    count = counter(progress, "labelling", count_rows(paths), unit="records")
    count.advance(writer.journal.rows)  # resumed batches
    commit = _reporting_commit(writer, count)
    started = time.monotonic()
    with count:  # closed (the bar taken down) however the engine ends
        written = _run_engine(engine, task, paths, batch_size, skip, job, commit, writer, workers, address,
                              keep_rows, progress)
    ended = time.monotonic()
    writer.finish(output_schema(model, votes=votes))
    card = write_card(run_dir, model, writer)
    steady = 0.0
    if commit.first is not None and commit.last[0] > commit.first[0]:
        steady = (commit.last[1] - commit.first[1]) / (commit.last[0] - commit.first[0])
    return GenerateSummary(out=str(out), rows_written=written, rows_total=writer.journal.rows,
                           batches_resumed=writer.resumed_batches, already_complete=False,
                           seconds=ended - started, steady_records_per_s=steady, card=card)


def write_card(run_dir: str | Path, model: RunModel, writer: ResumableWriter) -> str | None:
    """Write the dataset card of a finished output (OUT.card.md): the run's figures, the output's counts.
    None for an end model (MODEL_DIR of `lfagent train`, marked by its train.json): it has no seed figures,
    LFs or calibration for a card to report, and a card would say its labels come from LFs."""
    if (Path(run_dir) / "train.json").is_file():
        return None
    tally = tally_output(model, writer.out, writer.format)
    return str(write_dataset_card(run_dir, writer.out, counts=tally.counts,
                                  class_distribution=tally.class_distribution, coverage=tally.coverage))


def _run_engine(engine, task, paths, batch_size, skip, job, commit, writer, workers, address, keep_rows,
                progress) -> int:
    if engine == "ray":
        from lfagent.generate.engines.ray_engine import run_ray

        return run_ray(plan_shards(task, paths, batch_size, skip), task, job, commit, fmt=writer.format,
                       workers=workers, address=address)
    from lfagent.generate.engines.local import run_local

    # Pool workers read their own shards; code LFs need the rows here, for the sandbox pool.
    items = plan_shards(task, paths, batch_size, skip) if workers > 1 and not keep_rows \
        else iter_batches(task, paths, batch_size, keep_rows=keep_rows, skip=skip)
    return run_local(items, job, commit, task=task, fmt=writer.format, workers=workers, progress=progress)


def count_rows(paths: list[Path]) -> int | None:
    """Records in `paths`, for the progress bar's total: Parquet metadata, or the lines of plain JSONL
    files (read at disk speed); None when some input cannot be counted cheaply (CSV, .gz, WRENCH)."""
    from lfagent.data.readers import detect_format, open_parquet

    total = 0
    for path in paths:
        fmt = detect_format(path)
        if fmt == "parquet":
            total += open_parquet(path).metadata.num_rows
        elif fmt == "jsonl" and path.suffix.lower() != ".gz":
            with open(path, "rb") as handle:
                total += sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
                handle.seek(max(0, handle.tell() - 1))
                total += handle.tell() > 0 and handle.read(1) != b"\n"  # a last line without its newline
        else:
            return None
    return total


def _reporting_commit(writer: ResumableWriter, count):
    def commit(keys, num_rows: int, payload: bytes) -> None:
        writer.commit_encoded(keys, num_rows, payload)
        # (time, rows so far) at the first and the last commit: the steady rate between them leaves out
        # engine start, warm-up and shutdown (ray.shutdown alone takes ~1 s).
        commit.last = (time.monotonic(), commit.last[1] + num_rows)
        if commit.first is None:
            commit.first = commit.last
        count.advance(num_rows)
    commit.first, commit.last = None, (0.0, 0)
    return commit
