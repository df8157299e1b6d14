"""A finished single-label run's test accuracy with its final expert alone, and joined with its label model at
each weight of JOIN_WEIGHTS (the run chooses among them on its cross-fitted seeds).

    python -m evals.experiments.join_at_test RUN_DIR DATASET [--data-dir ../shared/data]

RUN_DIR is an lfagent run on a benchmark draw of DATASET (the benchmark's lfagent-none system, its run
directory kept); its LFs and expert are applied to the test split.
"""
from __future__ import annotations

from evals.experiments.common import kept_run_on_test


def main() -> None:
    from lfagent.fit.expert import JOIN_WEIGHTS, expert_proba
    from lfagent.sandbox.apply import apply_lfs

    _, labeler, data, frozen, encoder = kept_run_on_test(__doc__.splitlines()[0])
    texts, y = data.test.texts, data.test.y
    tuned = encoder.encode(texts)
    L = apply_lfs(labeler.lfs, texts, labeler.class_names, embeddings=frozen).L
    alone = expert_proba(labeler.expert, tuned, labeler.k).argmax(1) == y
    print(f"run's join weight {labeler.join_weight}; expert alone {alone.mean():.3f}")
    print("| weight | accuracy |\n|---|---|")
    for weight in JOIN_WEIGHTS:
        probs, _ = labeler.model_copy(update={"join_weight": weight}).raw_proba(L, frozen, tuned)
        print(f"| {weight:.2f} | {(probs.argmax(1) == y).mean():.3f} |")


if __name__ == "__main__":
    main()
