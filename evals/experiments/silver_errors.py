"""A kept single-label run's silver errors on the test rows and on the extra train rows (where the
benchmark's end model trains), and how many of the false positives its final expert alone calls positive.

    python -m evals.experiments.keep_run sms 1 lfagent-expert OUT     # keeps OUT/run and OUT/task
    python -m evals.experiments.silver_errors OUT/run sms [--data-dir ../shared/data]

Positive = class 1 (sms: spam). Made to see why sms draw 1's end model fell with the simulated LLM while
its silver F1 on test rose (evals/results/five-draws/NOTES.md).
"""
from __future__ import annotations

import json
import numpy as np

from evals.experiments.common import kept_run_args


def main() -> None:
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.fit.expert import expert_proba
    from lfagent.rundir.files import load_model

    args, data = kept_run_args(__doc__.splitlines()[0])
    labeler = load_model(args.run_dir).labeler
    truth = {rid: (text, int(y)) for split in (data.train, data.test) for rid, text, y in zip(split.ids, split.texts, split.y)}
    silver = [json.loads(line) for line in (args.run_dir / "silver.jsonl").read_text().splitlines()]
    encoder = Embedder(default_cache_dir() / "embeddings.sqlite", embedder=labeler.expert_embedder,
                       model_dir=args.run_dir / "expert" / "encoder")
    print("| rows | n | positives | false positives | false negatives | FPs the final expert calls positive |")
    print("|---|---|---|---|---|---|")
    for part in ("test", "train"):
        rows = [s for s in silver if s["id"] in truth and s["id"].startswith(part)]
        y = np.array([truth[s["id"]][1] for s in rows])
        predicted = np.array([labeler.class_names.index(s["label"]) for s in rows])
        false_positive = np.flatnonzero((predicted == 1) & (y == 0))
        texts = [truth[rows[i]["id"]][0] for i in false_positive]
        expert = expert_proba(labeler.expert, encoder.encode(texts), labeler.k).argmax(1) if texts else np.zeros(0)
        print(f"| {part} | {len(rows)} | {int(y.sum())} | {len(false_positive)} | "
              f"{int(np.sum((predicted == 0) & (y == 1)))} | {int(np.sum(expert == 1))} |")


if __name__ == "__main__":
    main()
