"""Keyword LFs that fire together against an LLM's label sets measured on the seeds (synthetic; label-set-seeds/).

    python evals/experiments/correlated_lfs.py                      # with the lfagent on the path
    git worktree add /tmp/old COMMIT && PYTHONPATH=/tmp/old python evals/experiments/correlated_lfs.py

Two classes, a (30%) and b. `keywords` LFs for a fire together (each with p 0.8) on the half of a they catch,
and on 1% of the rest; an LLM labels every record and 100 seeds, giving each true class with p 0.9 and each
other with p 0.03 (at least one class). Prints, per number of keywords and data seed, P(a) on the records
where the LLM says a and no keyword fires: the truth, and the multi-label label model's (fit with the seeds).
Runs on any lfagent since `MultiLabelModel.fit(L_known=, Y_known=)` exists (68daaae).
"""
from __future__ import annotations

import numpy as np


def draw(rng: np.random.Generator, n: int, keywords: int):
    Y = np.zeros((n, 2), int)
    Y[:, 0] = rng.random(n) < 0.3
    Y[:, 1] = 1 - Y[:, 0]
    caught = (Y[:, 0] == 1) & (rng.random(n) < 0.5)
    said = (rng.random((n, 2)) < np.where(Y == 1, 0.9, 0.03)).astype(int)
    none = said.sum(axis=1) == 0
    said[none, Y[none].argmax(axis=1)] = 1
    votes = [np.where(rng.random(n) < np.where(caught, 0.8, 0.01), 0, -1) for _ in range(keywords)]
    return np.column_stack(votes + [np.where(said[:, c] == 1, c, -1) for c in range(2)]), Y, said


def main() -> None:
    from lfagent.fit.multilabel import MultiLabelModel

    print("| keywords | data seed | truth | label model |\n|---|---|---|---|")
    for keywords in (2, 3, 4):
        for seed in range(3):
            rng = np.random.default_rng(seed)
            L, Y, said = draw(rng, 3000, keywords)
            L_seed, Y_seed, _ = draw(rng, 100, keywords)
            model = MultiLabelModel(2, label_sets={keywords: 0, keywords + 1: 1})
            p = model.fit(L, seed=0, L_known=L_seed, Y_known=Y_seed).predict_proba(L)[:, 0]
            rows = (said[:, 0] == 1) & (L[:, :keywords] == -1).all(axis=1)
            print(f"| {keywords} | {seed} | {Y[rows, 0].mean():.3f} | {p[rows].mean():.3f} |")


if __name__ == "__main__":
    main()
