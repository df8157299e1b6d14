"""How many fine-tuning steps the few-shot expert needs, and whether averaging two half-seed encoders (a
"soup") can stand in for a third fine-tune on every seed. Scored as setfit-seeds is (fine-tuned MiniLM +
balanced logistic head, test rows), on tuning draws the benchmark does not report (10 and up).

    python -m evals.experiments.fewshot_budget [--datasets trec,sms,youtube] [--draws 10,11]

Configurations (steps are optimiser steps of 16 pairs; SetFit's default recipe is 250 for 100 seeds):
- full-S: one encoder fine-tuned on every seed for S steps;
- soup-S: two encoders, each fine-tuned on half the seeds (the cross-fitting groups) for S/2 steps,
  their weights averaged: what a run would get with no final fine-tune at all.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from evals.experiments.common import encoder_score, seed_rows, tuning_draw_args, tuning_draws


def soup(a, b):
    """The two encoders' weights averaged (both fine-tuned from the same MiniLM)."""
    out = copy.deepcopy(a)
    sb = b.state_dict()
    out.load_state_dict({k: (v + sb[k]) / 2 if v.is_floating_point() else v for k, v in a.state_dict().items()})
    return out


def main(argv: list[str] | None = None) -> int:
    from lfagent.fit.fewshot import fine_tune_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="full-250,full-125,soup-250")
    args = tuning_draw_args(parser, "trec,sms,youtube", "10,11", argv)
    configs = args.configs.split(",")
    print("| dataset | draw | " + " | ".join(configs) + " |\n|---|---|" + "---|" * len(configs), flush=True)
    for data, seed in tuning_draws(args):
        texts, y = seed_rows(data, seed)
        half = np.arange(len(texts)) % 2
        cells = []
        for config in configs:
            kind, steps = config.split("-")
            steps = int(steps)
            start = time.time()
            if kind == "full":
                encoder = fine_tune_encoder(texts, y, multi_label=data.multi_label, seed=seed, max_steps=steps)
            else:
                parts = [fine_tune_encoder([texts[i] for i in np.flatnonzero(half == g)], y[half == g],
                                           multi_label=data.multi_label, seed=seed + 1 + g,
                                           max_steps=steps // 2) for g in (0, 1)]
                encoder = soup(*parts)
            cells.append(f"{encoder_score(encoder, texts, y, data, seed):.3f} ({time.time() - start:.0f} s)")
        print(f"| {data.name} | {seed} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
