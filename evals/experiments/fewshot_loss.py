"""Which contrastive loss the few-shot expert's fine-tune should use, at what cost. Scored as setfit-seeds
is (fine-tuned MiniLM + balanced logistic head, test rows), on tuning draws the benchmark does not report
(10 and up).

    python -m evals.experiments.fewshot_loss [--datasets trec,sms,youtube] [--draws 10,11] \\
        [--configs "cosine triplet:epochs=10,learning_rate=5e-5"]

A configuration is a loss and fine_tune_encoder options: `cosine` is SetFit's default recipe (pairs, 20
iterations, batch 16 pairs: 250 steps of 32 texts for 100 seeds); `triplet` (BatchAllTripletLoss) scores
every triplet inside a batch of 16 labelled texts, so a step encodes half the texts and an epoch is
ceil(n / batch) steps. (setfit's SupConLoss gave NaN vectors on trec: a class alone in its batch.)
The table gives each one's score, the texts it encoded in training and its time.
"""
from __future__ import annotations

import argparse
import time

from evals.datasets import load_dataset
from evals.experiments.common import encoder_score, seed_rows


def parse(config: str) -> tuple[str, dict]:
    loss, _, rest = config.partition(":")
    options = {"loss": loss}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=")
        options[key] = float(value) if key == "learning_rate" else int(value)
    return config, options


def encoded_texts(n: int, options: dict) -> int:
    """Texts the fine-tune pushes through the encoder (forward and backward): a pair is two."""
    from lfagent.fit.fewshot import step_count

    per_row = 2 if options["loss"] == "cosine" else 1
    return step_count(n, options) * options.get("batch_size", 16) * per_row


def main(argv: list[str] | None = None) -> int:
    from lfagent.fit.fewshot import fine_tune_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="trec,sms,youtube")
    parser.add_argument("--draws", default="10,11")
    parser.add_argument("--configs", default="cosine triplet:epochs=10,learning_rate=5e-5")
    args = parser.parse_args(argv)
    configs = [parse(c) for c in args.configs.split()]
    print("| dataset | draw | " + " | ".join(c for c, _ in configs) + " |\n|---|---|" + "---|" * len(configs),
          flush=True)
    for name in args.datasets.split(","):
        data = load_dataset(name)
        for seed in map(int, args.draws.split(",")):
            texts, y = seed_rows(data, seed)
            cells = []
            for _, options in configs:
                start = time.time()
                encoder = fine_tune_encoder(texts, y, multi_label=data.multi_label, seed=seed, **options)
                took = time.time() - start
                score = encoder_score(encoder, texts, y, data, seed)
                cells.append(f"{score:.3f} ({encoded_texts(len(texts), options):,} texts, {took:.0f} s)")
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
