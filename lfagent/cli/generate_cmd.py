"""`lfagent generate RUN_DIR --input PATH_OR_GLOB [--input ...] --out OUT.parquet|OUT.jsonl`."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `lfagent run` (holds model.json)")
    parser.add_argument("--input", action="extend", nargs="+", required=True, metavar="PATH_OR_GLOB",
                        help="JSONL, CSV or Parquet file(s) to label; repeat or use a glob")
    parser.add_argument("--out", required=True, help="OUT.parquet or OUT.jsonl (resumes if a journal exists); "
                        "the dataset card goes beside it, OUT.card.md")
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (local) or Ray CPUs, one thread each; "
                        "local with 1: this process, every core")
    parser.add_argument("--address", default=None, help="join this Ray cluster instead of starting one")
    parser.add_argument("--batch-size", type=int, default=10_000, help="records per batch (the resume unit)")
    parser.add_argument("--votes", action="store_true", help="also write each LF's vote per record")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def main(args: argparse.Namespace) -> int:
    from lfagent.cli.progress import Progress
    from lfagent.generate import generate

    progress = Progress(False if args.quiet else None)
    summary = generate(args.run_dir, args.input, args.out, engine=args.engine, workers=args.workers,
                       address=args.address, batch_size=args.batch_size, votes=args.votes,
                       overwrite=args.overwrite, progress=progress)
    if summary.already_complete:
        print(f"{summary.out} is already complete ({summary.rows_total} rows); nothing to do")
        if summary.card:
            print(f"dataset card: {summary.card}")
        return 0
    rate = summary.rows_written / summary.seconds if summary.seconds else 0.0
    resumed = f", resumed after {summary.batches_resumed} batches" if summary.batches_resumed else ""
    # The steady rate is measured between the first and the last batch written: one batch has none.
    steady = (f"; steady {summary.steady_records_per_s:,.0f} records/s" if summary.steady_records_per_s > 0
              else "")
    print(f"wrote {summary.out}: {summary.rows_total:,} rows ({summary.rows_written:,} now in "
          f"{summary.seconds:.1f} s, {rate:,.0f} records/s{steady}{resumed})")
    if summary.card:
        print(f"wrote {summary.card} (dataset card)")
    return 0
