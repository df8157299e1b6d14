"""A kept multi-label run with the LLM's record labels: its label model refitted with and without the seeds
measuring the LLM's label sets, alone and joined with the run's expert (multilabel.py; label-set-seeds/).

    python -m evals.experiments.keep_run goemotions DRAW lfagent-expert-tenth OUT     # keeps OUT/run
    python -m evals.experiments.label_set_refit OUT/run goemotions --draw DRAW [--data-dir ../shared/data]

Micro-F1 on the test rows, and per class the LLM's rates as the refitted label model holds them. The LFs,
the expert and the join weights are the run's; only the label model is refitted (on the test rows and the
draw's other unlabeled rows, as the run fitted it).
"""
from __future__ import annotations

import argparse

import numpy as np

from evals.experiments.common import kept_run_on_test


def micro_f1(pred: np.ndarray, gold: np.ndarray) -> str:
    tp, fp, fn = (pred & gold).sum(), (pred & ~gold).sum(), (~pred & gold).sum()
    return f"{2 * tp / max(2 * tp + fp + fn, 1):.3f} (fp {fp}, fn {fn})"


def main() -> None:
    from evals.datasets import make_draw
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.fit.expert import expert_proba, join_experts
    from lfagent.fit.multilabel import MultiLabelModel
    from lfagent.lf import ANNOTATION_SOURCE
    from lfagent.sandbox.apply import apply_lfs
    from lfagent.sandbox.pool import SandboxPool

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draw", type=int, required=True, help="the benchmark draw the run was made on")
    args, labeler, data, frozen, encoder = kept_run_on_test(parser)
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=args.draw)  # the benchmark's defaults
    names, k = labeler.class_names, labeler.k
    seed_texts = [data.train.texts[i] for i in draw.seed_rows]
    extra_texts = [data.train.texts[i] for i in draw.extra_rows]
    embed = Embedder(default_cache_dir() / "embeddings.sqlite").encode
    with SandboxPool(workers=1) as pool:
        def votes(texts, vectors):
            return apply_lfs(labeler.lfs, texts, names, embeddings=vectors, pool=pool).L
        L_test, L_seed = votes(data.test.texts, frozen), votes(seed_texts, embed(seed_texts))
        L_unl = np.vstack([L_test, votes(extra_texts, embed(extra_texts))])
    y_seed = np.asarray(data.train.y)[draw.seed_rows].astype(int)
    y = np.asarray(data.test.y, bool)
    sets = {j: names.index(lf.label) for j, lf in enumerate(labeler.lfs) if lf.provenance.source == ANNOTATION_SOURCE}
    expert = expert_proba(labeler.expert, encoder.encode(data.test.texts), k)
    covered = (L_test != -1).any(axis=1)
    models = {"the run's": labeler.fitted_label_model(),
              "refit, no seeds": MultiLabelModel(k, label_sets=sets).fit(L_unl, seed=0),
              "refit, seeds measure the LLM": MultiLabelModel(k, label_sets=sets).fit(L_unl, seed=0, L_known=L_seed,
                                                                                       Y_known=y_seed)}
    weights = sorted({1.0, 0.5, labeler.join_weight}, reverse=True)
    print(f"the run's join weight {labeler.join_weight}; the LLM's own labels on test: "
          f"{micro_f1(_llm_sets(L_test, sets, k), y)}")
    print("| label model | alone | " + " | ".join(f"joined, weight {w}" for w in weights) + " |")
    print("|---" * (2 + len(weights)) + "|")
    for name, model in models.items():
        lm = model.predict_proba(L_test)
        joined = [micro_f1(join_experts(lm, expert, covered, True, "product", weight=w) >= 0.5, y) for w in weights]
        print(f"| {name} | {micro_f1(lm >= 0.5, y)} | " + " | ".join(joined) + " |")
    print("\nthe LLM's rates per class, P(vote | class), as each label model holds them (yes|c, no|c, yes|not c),"
          " and the class's prior")
    for name, model in models.items():
        rates = []
        for c, binary in enumerate(model.models_):
            table = binary.get_conditional_probs()
            column = next((j for j, cls in sets.items() if cls == c), None)
            if column is not None:
                rates.append(f"{names[c]} {table[column, 1, 1]:.2f}/{table[column, 1, 0]:.2f}/"
                             f"{table[column, 0, 1]:.3f} (prior {binary.class_prior_[1]:.2f})")
        print(f"- {name}: " + "; ".join(rates))


def _llm_sets(L: np.ndarray, sets: dict[int, int], k: int) -> np.ndarray:
    out = np.zeros((len(L), k), dtype=bool)
    for j, c in sets.items():
        out[:, c] |= L[:, j] == c
    return out


if __name__ == "__main__":
    main()
