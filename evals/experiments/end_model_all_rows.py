"""The end model trained on the silver labels of every extra train row, against the benchmark's protocol
(only the rows some LF covers), for lfagent --llm none; lr-seeds for reference.

    python -m evals.experiments.end_model_all_rows [--datasets youtube,sms,trec,goemotions] [--draws 5]
"""
from __future__ import annotations

import argparse

import numpy as np

from evals.bench import make_embedder
from evals.datasets import load_dataset
from evals.experiments.common import draw_context, score_on_test
from evals.logreg import fit_predict_logreg
from evals.metrics import hard_labels
from evals.systems import run_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="youtube,sms,trec,goemotions")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args(argv)
    embed = make_embedder()
    print("| dataset | silver | end model, covered rows | end model, all rows | LR on the seeds (lr-seeds) |\n|---|---|---|---|---|")
    for name in args.datasets.split(","):
        data = load_dataset(name)
        test_emb = embed(data.test.texts)

        def score(X, y, seed):
            return score_on_test(fit_predict_logreg(X, y, test_emb, k=data.k, multi_label=data.multi_label,
                                                 seed=seed), data)

        rows = []
        for seed in range(args.draws):
            ctx = draw_context(data, seed, embed)
            out = run_system("lfagent-none", ctx)
            silver = hard_labels(out.train_probs, data.multi_label, out.train_decisions)
            X = embed(ctx.train_texts(ctx.draw.extra_rows))
            covered = out.train_covered
            lr = run_system("lr-seeds", ctx)
            rows.append([score_on_test(out.test_probs, data, out.test_decisions),
                         score(X[covered], silver[covered], seed), score(X, silver, seed),
                         score_on_test(lr.test_probs, data)])
        mean = np.mean(rows, axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in mean) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
