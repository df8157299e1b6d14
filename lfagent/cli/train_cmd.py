"""`lfagent train RUN_DIR --out MODEL_DIR`: an end model fine-tuned on the run's silver labels."""
from __future__ import annotations

import argparse


# lfagent.fit.end_model's defaults, repeated so that building the parser imports no numpy (`lfagent --help`
# stays light); tests/test_fewshot_expert.py checks they agree.
END_MODEL_STEPS = 250
PER_CLASS = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `lfagent run` (model.json, silver.jsonl)")
    parser.add_argument("--out", required=True, metavar="MODEL_DIR",
                        help="folder to write the end model to; `lfagent generate MODEL_DIR` labels with it")
    parser.add_argument("--steps", type=int, default=END_MODEL_STEPS,
                        help="optimiser steps of the contrastive fine-tune (the head then learns from every row)")
    parser.add_argument("--per-class", type=int, default=PER_CLASS,
                        help="silver rows per class, the run's surest, added to the seeds for the fine-tune")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an end model already in MODEL_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def main(args: argparse.Namespace) -> int:
    from lfagent.cli.progress import Progress
    from lfagent.errors import InputError
    from lfagent.errors import require
    from lfagent.fit.end_model import train_end_model

    if args.steps < 1 or args.per_class < 1:
        raise InputError("--steps and --per-class must be at least 1")
    require("setfit", extra="embed", feature="lfagent train")
    summary = train_end_model(args.run_dir, args.out, steps=args.steps, per_class=args.per_class, seed=args.seed,
                              overwrite=args.overwrite, progress=Progress(False if args.quiet else None))
    bf16 = ", bfloat16 mixed precision" if summary.precision == "bf16" else ""
    print(f"wrote {summary.model_dir}: encoder fine-tuned from the {summary.start} on {summary.contrastive_texts} "
          f"texts ({summary.steps} steps{bf16}), head on {summary.rows:,} silver rows + {summary.seeds} seeds, "
          f"{summary.seconds:.0f} s\nlabel new records: lfagent generate {summary.model_dir} --input FILE --out OUT.jsonl")
    return 0
