"""How much does each embedder keep? Logistic regression (evals' C=10, balanced) on frozen vectors.

    python -m evals.experiments.embedder_probe [--datasets youtube,sms,trec] [--draws 3]

Per dataset and embedder: the test score of the lr-seeds model (100 seeds, draws 0..N-1, mean) and of the
same model on every train row (how much the space can separate at all). Scores are evals' headline
metrics (accuracy; F1 of spam on sms). Variants beyond lfagent.data.embedders' names:
  minilm-static-256-nosif  the distilled 256-d vectors with model2vec's SIF weights divided back out
                           (SIF down-weights frequent tokens, which in trec are the question words)
Writes evals/results/embedders/probe.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from evals.datasets import load_dataset, make_draw
from evals.logreg import fit_predict_logreg
from evals.metrics import prediction_scores

OUT = Path(__file__).resolve().parents[1] / "results" / "embedders" / "probe.md"
EMBEDDERS = ["minilm", "minilm-static-128", "minilm-static-256", "minilm-static-256-nosif", "minilm-static-384"]


def headline_score(data, y, probs) -> float:
    return prediction_scores(probs, y, multi_label=data.multi_label, positive_class=data.positive_class)["score"]


def encoder_for(name: str):
    from lfagent.data.embedders import get_embedder

    if not name.endswith("-nosif"):
        return get_embedder(name).encode
    from model2vec.distill.inference import compute_weights

    base = get_embedder(name[: -len("-nosif")])
    model = base._model  # the experiment reaches inside on purpose: a variant, not a product
    weights = compute_weights(len(model.embedding), sif_coefficient=base.sif_coefficient)
    model.embedding = (model.embedding / weights[:, None]).astype(np.float32)

    def encode(texts):
        out = model.encode(list(texts), use_multiprocessing=False, normalize=True)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    return encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="youtube,sms,trec")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        data = load_dataset(dataset)
        for name in args.embedders.split(","):
            from lfagent.data.embed import Embedder
            from lfagent.data.embed import default_cache_dir

            encode = (Embedder(default_cache_dir() / "embeddings.sqlite").encode if name == "minilm"
                      else encoder_for(name))
            X_train, X_test = encode(data.train.texts), encode(data.test.texts)
            seeds = []
            for draw_seed in range(args.draws):
                draw = make_draw(data, n_seeds=100, extra_unlabeled=0, seed=draw_seed)
                probs = fit_predict_logreg(X_train[draw.seed_rows], data.train.y[draw.seed_rows], X_test, k=data.k,
                                           multi_label=data.multi_label, seed=draw_seed)
                seeds.append(headline_score(data, data.test.y, probs))
            full = fit_predict_logreg(X_train, data.train.y, X_test, k=data.k, multi_label=data.multi_label, seed=0)
            rows.append(f"| {dataset} | {name} | {X_test.shape[1]} | {np.mean(seeds):.3f} ± {np.std(seeds):.3f} "
                        f"| {headline_score(data, data.test.y, full):.3f} |")
            print(rows[-1], flush=True)
    table = "\n".join(["| dataset | embedder | dim | lr on 100 seeds (mean ± sd) | lr on all train rows |",
                       "|---|---|---|---|---|", *rows])
    command = "python -m evals.experiments.embedder_probe " + shlex.join(sys.argv[1:])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(f"# Frozen-embedding probe\n\n`{command}`, draws 0..{args.draws - 1}\n\n{table}\n")
    print(f"\n{table}\nwrote {OUT}")


if __name__ == "__main__":
    main()
