"""How the end model should weigh silver labels when it trains on every extra train row (single-label).

    python -m evals.experiments.end_model_weighting [--datasets youtube,sms,trec] [--draws 5]

Variants, all logistic regression on MiniLM embeddings (C=10): hard labels of covered rows (the old
protocol), hard labels of all rows, soft labels (each row once per class, weighted by its probability)
with and without balanced class weights, and hard labels weighted by confidence (the protocol chosen).
"""
from __future__ import annotations

import argparse

import numpy as np

from evals import logreg
from evals.bench import make_embedder
from evals.datasets import load_dataset
from evals.experiments.common import draw_context
from evals.metrics import prediction_scores
from evals.systems import run_system

VARIANTS = ("hard, covered rows", "hard, all rows", "soft, balanced", "soft, unbalanced", "hard x confidence")


def variants(X, P, covered, X_new, k, seed) -> list[np.ndarray]:
    hard = P.argmax(axis=1)
    rows, classes = np.nonzero(P >= logreg.MIN_WEIGHT)
    unbalanced = logreg._model(10.0, seed, False).fit(X[rows], classes, sample_weight=P[rows, classes])
    soft_unbalanced = np.zeros((len(X_new), k))
    soft_unbalanced[:, unbalanced.classes_] = unbalanced.predict_proba(X_new)
    return [logreg.fit_predict_logreg(X[covered], hard[covered], X_new, k=k, multi_label=False, seed=seed),
            logreg.fit_predict_logreg(X, hard, X_new, k=k, multi_label=False, seed=seed),
            logreg.fit_predict_soft_logreg(X, P, X_new, k=k, multi_label=False, seed=seed),
            soft_unbalanced,
            logreg.fit_predict_weighted_logreg(X, P, X_new, k=k, multi_label=False, seed=seed)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="youtube,sms,trec")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args(argv)
    embed = make_embedder()
    print("| dataset | system | " + " | ".join(VARIANTS) + " |\n|---|---|" + "---|" * len(VARIANTS))
    for name in args.datasets.split(","):
        data = load_dataset(name)
        test_emb = embed(data.test.texts)
        scores = {system: [] for system in ("lfagent-none", "lr-seeds")}
        for seed in range(args.draws):
            ctx = draw_context(data, seed, embed)
            X = embed(ctx.train_texts(ctx.draw.extra_rows))
            for system in scores:
                out = run_system(system, ctx)
                P = out.train_probs / out.train_probs.sum(axis=1, keepdims=True)
                scores[system].append([prediction_scores(p, data.test.y, multi_label=False,
                                                         positive_class=data.positive_class)["score"]
                                       for p in variants(X, P, out.train_covered, test_emb, data.k, seed)])
        for system, rows in scores.items():
            print(f"| {name} | {system} | " + " | ".join(f"{v:.3f}" for v in np.mean(rows, axis=0)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
