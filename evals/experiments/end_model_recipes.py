"""End-model recipes on a kept run: which one scores above the run's own silver labels? (issue 19: the end
model trained on silver above both silver and setfit-seeds)

    python -m evals.experiments.keep_run DATASET DRAW lfagent-none OUT      # a tuning draw (10 and up)
    python -m evals.experiments.end_model_recipes OUT/run DATASET [--recipes head,250:32,500:128] [--seed DRAW]

Recipes: `STEPS:PER_CLASS` is `lfagent train --steps STEPS --per-class PER_CLASS` (the default is 250:32);
`--seed` is train's (the benchmark passes the draw); `head` skips the second fine-tune and fits the same confidence-weighted head on the run's own expert encoder.
Each is scored with evals' headline metric on the test rows (which are among the run's unlabeled records, as
in the benchmark), beside the run's silver labels.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from evals.experiments.common import kept_run_args, silver_score, score_on_test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="head,250:32")
    parser.add_argument("--seed", type=int, default=0, help="train's seed (the benchmark passes the draw)")
    args, data = kept_run_args(parser)
    recipes, draw = args.recipes, args.seed
    print(f"| recipe | {data.name} test score | s |\n|---|---|---|\n| silver labels | "
          f"{silver_score(args.run_dir, data):.3f} | |", flush=True)
    for recipe in recipes.split(","):
        start = time.time()
        probs = head_only(args.run_dir, data) if recipe == "head" else retrained(args.run_dir, data, recipe, draw)
        score = score_on_test(probs, data)
        print(f"| {recipe} | {score:.3f} | {time.time() - start:.0f} |", flush=True)
    return 0


def retrained(run_dir: Path, data, recipe: str, seed: int) -> np.ndarray:
    from lfagent.fit.end_model import EndModel, train_end_model

    steps, per_class = map(int, recipe.split(":"))
    with tempfile.TemporaryDirectory(prefix="end-recipe-") as tmp:
        train_end_model(run_dir, Path(tmp) / "end", steps=steps, per_class=per_class, seed=seed)
        return EndModel.load(Path(tmp) / "end").predict_proba(list(data.test.texts))


def head_only(run_dir: Path, data) -> np.ndarray:
    """The confidence-weighted head on the run's expert encoder, no second fine-tune."""
    from lfagent.fit.end_model import fit_weighted_head, silver_targets
    from lfagent.fit.expert import expert_proba
    from lfagent.fit.fewshot import encode, load_encoder
    from lfagent.fit.fewshot_views import encoder_dir
    from lfagent.rundir.files import load_model

    model = load_model(run_dir)
    labeler = model.labeler
    seeds, unlabeled, seed_probs, probs = silver_targets(Path(run_dir), model)
    encoder = load_encoder(encoder_dir(run_dir))
    head = fit_weighted_head(encode(encoder, list(seeds.texts) + list(unlabeled.texts)),
                             np.vstack([seed_probs, probs]), labeler.multi_label, seed=0)
    return expert_proba(head, encode(encoder, list(data.test.texts)), labeler.k)


if __name__ == "__main__":
    raise SystemExit(main())
