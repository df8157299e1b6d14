"""A kept run's test figures with its final expert as stored, with the seed-only expert in its place, and
with the stored one rescaled to the seed-only expert's confidence (`expert.confidence_matched`).

    python -m evals.experiments.keep_run sms 3 lfagent-expert OUT          # keeps OUT/run and OUT/task
    python -m evals.experiments.expert_confidence OUT/run sms [--data-dir ../shared/data]

Made to see why calibrated silver labels lost calibration once the LLM's record labels trained the final
expert (evals/results/confidence-match/NOTES.md). Single-label datasets; F1 is of class 1 (sms: spam).
"""
from __future__ import annotations

import json

import numpy as np

from evals.experiments.common import kept_run_on_test


def main() -> None:
    from lfagent.fit import expected_calibration_error
    from lfagent.fit.expert import confidence_matched, expert_proba, fit_expert
    from lfagent.fit.fold_fit import class_prior
    from lfagent.sandbox import SandboxPool

    args, labeler, data, frozen, tuned = kept_run_on_test(__doc__.splitlines()[0])
    task = args.run_dir.parent / "task"
    texts, y, k = data.test.texts, np.asarray(data.test.y), labeler.k
    test_emb = tuned.encode(texts)
    seeds = [json.loads(line) for line in (task / "seeds.jsonl").read_text().splitlines()]
    seed_y = np.array([labeler.class_names.index(s["label"]) for s in seeds])
    seed_only = fit_expert(tuned.encode([s["text"] for s in seeds]), seed_y, False, 0, c=10.0,
                           prior=class_prior(seed_y, k, False))
    unlabeled = [json.loads(line)["text"] for line in (task / "unlabeled.jsonl").read_text().splitlines()]
    matched = confidence_matched(labeler.expert, seed_only, tuned.encode(unlabeled), k)
    with SandboxPool(workers=1) as pool:  # the LLM's code LFs, if kept, run in the sandbox
        L = labeler.apply(texts, [{"id": i, "text": t} for i, t in zip(data.test.ids, texts)],
                          embeddings=frozen, pool=pool).L
    print("| final expert | silver acc | F1 | ECE | mean confidence | expert alone: acc | confidence |")
    print("|---|---|---|---|---|---|---|")
    for name, expert in (("as stored", labeler.expert), ("seed-only", seed_only), ("confidence-matched", matched)):
        probs, _ = labeler.model_copy(update={"expert": expert}).proba(L, frozen, test_emb)
        pred, alone = probs.argmax(1), expert_proba(expert, test_emb, k)
        f1 = 2 * np.sum((pred == 1) & (y == 1)) / max(np.sum(pred == 1) + np.sum(y == 1), 1)
        print(f"| {name} | {np.mean(pred == y):.3f} | {f1:.3f} | {expected_calibration_error(probs, y):.3f} | "
              f"{probs.max(1).mean():.3f} | {np.mean(alone.argmax(1) == y):.3f} | {alone.max(1).mean():.3f} |")


if __name__ == "__main__":
    main()
