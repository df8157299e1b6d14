"""What one fine-tuning step costs on the bundled example's 100 seed comments, with SetFit's random batches
and with lfagent's batches of similar-length pairs (the same pairs either way), in float32 and in bfloat16
mixed precision (what a run uses where the CPU has it natively: fit/fewshot.resolve_precision).

    python -m benchmarks.fewshot_step_time [--steps 40] [--max-seq-length 128]

Prints a Markdown table: seconds per optimiser step (16 pairs) and what a run's 375 steps would take.
Timings include loading MiniLM once per row; run on a quiet machine for figures worth quoting.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SEEDS = Path(__file__).resolve().parents[1] / "examples" / "youtube-spam" / "seeds.jsonl"


def main(argv: list[str] | None = None) -> int:
    from lfagent.fit import fewshot

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-seq-length", type=int, default=128)
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in SEEDS.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    y = np.array([int(r["label"] == "SPAM") for r in rows])
    grouped = fewshot.length_grouped_batches
    print(f"| batches | precision | s per step ({args.steps} steps, {args.max_seq_length} tokens) | 375 steps |\n"
          "|---|---|---|---|")
    rows = [("random (SetFit's)", None, "fp32"), ("similar lengths (lfagent)", grouped, "fp32"),
            ("similar lengths (lfagent)", grouped, "bf16")]
    for name, sampler, precision in rows:
        fewshot.length_grouped_batches = sampler or _random_batches
        try:
            start = time.perf_counter()
            fewshot.fine_tune_encoder(texts, y, multi_label=False, seed=0, max_steps=args.steps,
                                      max_seq_length=args.max_seq_length, precision=precision)
            per_step = (time.perf_counter() - start) / args.steps
        finally:
            fewshot.length_grouped_batches = grouped
        print(f"| {name} | {precision} | {per_step:.2f} | {375 * per_step / 60:.1f} min |", flush=True)
    print(f"\nbfloat16 native on this CPU: {fewshot.resolve_precision('auto') == 'bf16'}")
    print(f"\n{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end")
    return 0


def _random_batches(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
    """sentence-transformers' default sampler, as SetFit gets it."""
    import torch
    from torch.utils.data import RandomSampler

    try:
        from sentence_transformers.base.sampler import DefaultBatchSampler
    except ImportError:
        from sentence_transformers.sampler import DefaultBatchSampler
    return DefaultBatchSampler(RandomSampler(dataset, generator=generator or torch.Generator().manual_seed(seed)),
                               batch_size=batch_size, drop_last=drop_last)


if __name__ == "__main__":
    raise SystemExit(main())
