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
from evals.experiments.common import draw_context, score_on_test
from evals.systems import run_system

VARIANTS = ("hard, covered rows", "hard, all rows", "soft, balanced", "soft, unbalanced", "hard x confidence")


def variants(X, P, covered, X_new, k, seed) -> list[np.ndarray]:
    hard = P.argmax(axis=1)
    rows, classes = np.nonzero(P >= MIN_WEIGHT)
    unbalanced = logreg._model(10.0, seed, False).fit(X[rows], classes, sample_weight=P[rows, classes])
    soft_unbalanced = np.zeros((len(X_new), k))
    soft_unbalanced[:, unbalanced.classes_] = unbalanced.predict_proba(X_new)
    return [logreg.fit_predict_logreg(X[covered], hard[covered], X_new, k=k, multi_label=False, seed=seed),
            logreg.fit_predict_logreg(X, hard, X_new, k=k, multi_label=False, seed=seed),
            fit_predict_soft_logreg(X, P, X_new, k=k, multi_label=False, seed=seed),
            soft_unbalanced,
            logreg.fit_predict_weighted_logreg(X, P, X_new, k=k, multi_label=False, seed=seed)]


MIN_WEIGHT = 1e-4  # soft-label rows lighter than this change nothing measurable and only cost time


def fit_predict_soft_logreg(X: np.ndarray, P: np.ndarray, X_new: np.ndarray, *, k: int, multi_label: bool,
                            C: float = 10.0, seed: int = 0) -> np.ndarray:
    """Train on every row of X with its soft label P (n x k) and return probabilities for X_new: (n_new, k).

    Each row enters once per class with weight P[i, c] (multi-label: once as positive with weight P[i, c]
    and once as negative with 1 - P[i, c], per class), so the loss is the cross-entropy against the soft
    label itself: a row the labeler is unsure of pulls little towards any class, and a row no LF covers
    adds what its probabilities say (the prior, or the embedding expert's view) rather than being left
    out. Chosen over "hard label weighted by confidence", which turns a 0.4 / 0.35 / 0.25 row into a
    0.4-weight vote for one class and throws the rest of its label away. Balanced class weights, as in
    `fit_predict_logreg`, are computed from each class's soft mass (sum of its probabilities).
    (Tried as the end model; the benchmark weighs hard labels by confidence instead: see evals/logreg.py.)
    """
    X, P = np.asarray(X, dtype=float), np.asarray(P, dtype=float).reshape(len(X), k)
    if multi_label:
        return np.column_stack([_soft_binary_probs(X, P[:, c], X_new, C, seed) for c in range(k)])
    rows, classes = np.nonzero(P >= MIN_WEIGHT)
    out = np.zeros((len(X_new), k))
    if len(rows) == 0:
        return np.full((len(X_new), k), 1.0 / k)
    weights = P[rows, classes] * _balanced(P[rows, classes], classes)
    present = np.unique(classes)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    model = logreg._model(C, seed, balanced=False).fit(X[rows], classes, sample_weight=weights)
    out[:, model.classes_] = model.predict_proba(X_new)
    return out


def _soft_binary_probs(X, p, X_new, C, seed) -> np.ndarray:
    both = np.concatenate([p, 1 - p])
    y = np.repeat([1, 0], len(p))
    keep = both >= MIN_WEIGHT
    if not keep.any():
        return np.full(len(X_new), 0.5)
    if len(np.unique(y[keep])) == 1:
        return np.full(len(X_new), float(y[keep][0]))
    X2 = np.vstack([X, X])[keep]
    weights = both[keep] * _balanced(both[keep], y[keep])
    return logreg._model(C, seed, balanced=False).fit(X2, y[keep], sample_weight=weights).predict_proba(X_new)[:, 1]


def _balanced(weights: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per row, sklearn's "balanced" factor total / (n_classes * class total), over soft masses."""
    present, index = np.unique(classes, return_inverse=True)
    mass = np.bincount(index, weights=weights)
    return (weights.sum() / (len(present) * mass))[index]


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
                scores[system].append([score_on_test(p, data)
                                       for p in variants(X, P, out.train_covered, test_emb, data.k, seed)])
        for system, rows in scores.items():
            print(f"| {name} | {system} | " + " | ".join(f"{v:.3f}" for v in np.mean(rows, axis=0)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
