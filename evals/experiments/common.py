"""What the experiments share: a draw's task folder, the score of a run's silver labels on test, and a kept
run's labeler with the test split in both of its vector spaces."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evals.bench import make_embedder
from evals.datasets import DEFAULT_DATA_DIR, BenchData, load_dataset, make_draw
from evals.metrics import prediction_scores
from evals.systems import DrawContext, _lookup, read_silver


def draw_context(data: BenchData, seed: int, embed=None) -> DrawContext:
    """The benchmark's draw `seed` (100 seeds, up to 2000 extra unlabeled rows)."""
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=seed)
    return DrawContext(data=data, draw=draw, embed=embed or make_embedder())


def score_on_test(probs: np.ndarray, data: BenchData, decisions: np.ndarray | None = None) -> float:
    """The benchmark's headline score of probabilities over the test rows (multi-label: `decisions` if given)."""
    return prediction_scores(probs, np.asarray(data.test.y), multi_label=data.multi_label,
                             positive_class=data.positive_class, decisions=decisions)["score"]


def silver_score(run_dir: Path, data: BenchData) -> float:
    """The benchmark's headline score of a run's silver labels on the test rows."""
    silver = read_silver(Path(run_dir) / "silver.jsonl", data.class_names)
    probs, _, decisions = _lookup(silver, data.test.ids)
    return score_on_test(probs, data, decisions)


def seed_rows(data: BenchData, seed: int) -> tuple[list[str], np.ndarray]:
    """The texts and labels of draw `seed`'s 100 seeds."""
    draw = make_draw(data, n_seeds=100, extra_unlabeled=0, seed=seed)
    return [data.train.texts[i] for i in draw.seed_rows], data.train.y[draw.seed_rows]


def encoder_score(encoder, texts: list[str], y: np.ndarray, data: BenchData, seed: int) -> float:
    """setfit-seeds' score for a fine-tuned encoder: a balanced logistic head on the seeds, test rows."""
    from lfagent.fit.fewshot import encode, fit_head, head_proba

    head = fit_head(encode(encoder, texts), y, multi_label=data.multi_label, k=data.k, seed=seed)
    return score_on_test(head_proba(head, encode(encoder, data.test.texts)), data)


def tuning_draw_args(parser: argparse.ArgumentParser, datasets: str, draws: str,
                     argv: list[str] | None = None) -> argparse.Namespace:
    """`--datasets` and `--draws` (comma-separated) added to `parser`, then parsed."""
    parser.add_argument("--datasets", default=datasets)
    parser.add_argument("--draws", default=draws, help="comma-separated seeds of draws (tuning draws: 10 and up)")
    return parser.parse_args(argv)


def tuning_draws(args: argparse.Namespace):
    """(dataset, draw seed) for every dataset and draw `tuning_draw_args` parsed."""
    for name in args.datasets.split(","):
        data = load_dataset(name)
        for seed in map(int, args.draws.split(",")):
            yield data, seed


def kept_run_args(about: str | argparse.ArgumentParser) -> tuple[argparse.Namespace, BenchData]:
    """`RUN_DIR DATASET [--data-dir]`, the arguments of the scripts that look into a kept run, and the dataset.
    `about`: the script's description, or a parser already holding the script's own options."""
    parser = about if isinstance(about, argparse.ArgumentParser) else argparse.ArgumentParser(description=about)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dataset")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    return args, load_dataset(args.dataset, args.data_dir)


def kept_run_on_test(description: "str | argparse.ArgumentParser"):
    """For the scripts that look into a kept run (`RUN_DIR DATASET [--data-dir]`): (arguments, the run's
    labeler, the dataset, the test texts in frozen MiniLM's space (what embedding LFs read), the run's own
    expert encoder). `description`: the script's, or a parser already holding the script's own options."""
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.rundir.files import load_model

    args, data = kept_run_args(description)
    labeler = load_model(args.run_dir).labeler
    cache = default_cache_dir() / "embeddings.sqlite"
    frozen = Embedder(cache).encode(data.test.texts)
    tuned = Embedder(cache, embedder=labeler.expert_embedder, model_dir=args.run_dir / "expert" / "encoder")
    return args, labeler, data, frozen, tuned
