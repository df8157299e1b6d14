"""A finished single-label run's test accuracy with its final expert alone, and joined with its label model at
each weight of JOIN_WEIGHTS (the run chooses among them on its cross-fitted seeds).

    python -m evals.experiments.join_at_test RUN_DIR DATASET [--data-dir ../shared/data]

RUN_DIR is an lfagent run on a benchmark draw of DATASET (the benchmark's lfagent-none system, its run
directory kept); its LFs and expert are applied to the test split.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from evals.datasets import DEFAULT_DATA_DIR, load_dataset


def main() -> None:
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.fit.expert import JOIN_WEIGHTS, expert_proba
    from lfagent.rundir.files import load_model
    from lfagent.sandbox.apply import apply_lfs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dataset")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.data_dir)
    labeler = load_model(args.run_dir).labeler
    texts, y = data.test.texts, data.test.y
    cache = default_cache_dir() / "embeddings.sqlite"
    frozen = Embedder(cache).encode(texts)  # what embedding LFs read
    tuned = Embedder(cache, embedder=labeler.expert_embedder,
                     model_dir=args.run_dir / "expert" / "encoder").encode(texts)
    L = apply_lfs(labeler.lfs, texts, labeler.class_names, embeddings=frozen).L
    alone = expert_proba(labeler.expert, tuned, labeler.k).argmax(1) == y
    print(f"run's join weight {labeler.join_weight}; expert alone {alone.mean():.3f}")
    print("| weight | accuracy |\n|---|---|")
    for weight in JOIN_WEIGHTS:
        probs, _ = labeler.model_copy(update={"join_weight": weight}).raw_proba(L, frozen, tuned)
        print(f"| {weight:.2f} | {(probs.argmax(1) == y).mean():.3f} |")


if __name__ == "__main__":
    main()
