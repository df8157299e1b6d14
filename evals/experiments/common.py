"""What the experiments share: a draw's task folder and the score of a run's silver labels on test."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from evals.bench import make_embedder
from evals.datasets import BenchData, make_draw
from evals.metrics import prediction_scores
from evals.systems import DrawContext, _lookup, read_silver


def draw_context(data: BenchData, seed: int, embed=None) -> DrawContext:
    """The benchmark's draw `seed` (100 seeds, up to 2000 extra unlabeled rows)."""
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=seed)
    return DrawContext(data=data, draw=draw, embed=embed or make_embedder())


def silver_score(run_dir: Path, data: BenchData) -> float:
    """The benchmark's headline score of a run's silver labels on the test rows."""
    silver = read_silver(Path(run_dir) / "silver.jsonl", data.class_names)
    probs, _, decisions = _lookup(silver, data.test.ids)
    return prediction_scores(probs, np.asarray(data.test.y), multi_label=data.multi_label,
                             positive_class=data.positive_class, decisions=decisions)["score"]


def seed_rows(data: BenchData, seed: int) -> tuple[list[str], np.ndarray]:
    """The texts and labels of draw `seed`'s 100 seeds."""
    draw = make_draw(data, n_seeds=100, extra_unlabeled=0, seed=seed)
    return [data.train.texts[i] for i in draw.seed_rows], data.train.y[draw.seed_rows]


def encoder_score(encoder, texts: list[str], y: np.ndarray, data: BenchData, seed: int) -> float:
    """setfit-seeds' score for a fine-tuned encoder: a balanced logistic head on the seeds, test rows."""
    from lfagent.fit.fewshot import encode, fit_head, head_proba

    head = fit_head(encode(encoder, texts), y, multi_label=data.multi_label, k=data.k, seed=seed)
    probs = head_proba(head, encode(encoder, data.test.texts))
    return prediction_scores(probs, np.asarray(data.test.y), multi_label=data.multi_label,
                             positive_class=data.positive_class)["score"]
