"""Fine-tuning in float32 against bfloat16 mixed precision, scored as setfit-seeds is (fine-tuned MiniLM +
balanced logistic head on the seeds, test rows), on tuning draws the benchmark does not report (10 and up).

    python -m evals.experiments.fewshot_precision [--datasets trec] [--draws 10] [--steps 100]

Configurations:
- fp32: what SetFit does;
- bf16: lfagent's mixed precision (fit/fewshot.py `_autocast`): the transformer's layers in bfloat16,
  pooling and the loss in float32;
- bf16-step: autocast over the whole training step, the loss included (what was tried first).
`--steps 0` runs the recipe's own length (250 steps for 100 seeds).
"""
from __future__ import annotations

import argparse
import contextlib
import time

from evals.experiments.common import encoder_score, seed_rows, tuning_draw_args, tuning_draws

CONFIGS = ("fp32", "bf16", "bf16-step")


@contextlib.contextmanager
def whole_step_autocast():
    import setfit
    import torch

    plain = setfit.Trainer.train_embeddings

    def train_embeddings(self, *args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(self, *args, **kwargs)

    setfit.Trainer.train_embeddings = train_embeddings
    try:
        yield
    finally:
        setfit.Trainer.train_embeddings = plain


def main(argv: list[str] | None = None) -> int:
    from lfagent.fit.fewshot import fine_tune_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = tuning_draw_args(parser, "trec", "10", argv)
    configs = args.configs.split(",")
    print("| dataset | draw | steps | " + " | ".join(configs) + " |\n|---|---|---|" + "---|" * len(configs), flush=True)
    for data, seed in tuning_draws(args):
        texts, y = seed_rows(data, seed)
        cells = []
        for config in configs:
            start = time.time()
            with whole_step_autocast() if config == "bf16-step" else contextlib.nullcontext():
                encoder = fine_tune_encoder(texts, y, multi_label=data.multi_label, seed=seed,
                                            max_steps=args.steps or None,
                                            precision="fp32" if config == "bf16-step" else config)
            cells.append(f"{encoder_score(encoder, texts, y, data, seed):.3f} ({time.time() - start:.0f} s)")
        print(f"| {data.name} | {seed} | {args.steps or 'recipe'} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
