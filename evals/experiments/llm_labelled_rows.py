"""A kept multi-label run: on the test rows the LLM labelled, its label sets against the silver labels.

    python -m evals.experiments.keep_run goemotions 0 lfagent-expert-tenth OUT     # keeps OUT/run and OUT/task
    python -m evals.experiments.llm_labelled_rows OUT/run goemotions [--data-dir ../shared/data]

Micro-F1 (with true and false positives and false negatives) of the LLM's sets and of silver `labels` on the
rows it labelled, silver on the rest, and classes per row. Made to see why silver fell short of the LLM's own
labels on GoEmotions (evals/results/tenth/NOTES.md).
"""
from __future__ import annotations

import json
import numpy as np

from evals.experiments.common import kept_run_args


def micro_f1(predicted: list[set], gold: list[set]) -> str:
    tp = sum(len(p & g) for p, g in zip(predicted, gold))
    fp, fn = sum(len(p - g) for p, g in zip(predicted, gold)), sum(len(g - p) for p, g in zip(predicted, gold))
    return f"{2 * tp / max(2 * tp + fp + fn, 1):.3f} (tp {tp}, fp {fp}, fn {fn})"


def main() -> None:
    from lfagent.lf import ANNOTATION_SOURCE, text_key
    from lfagent.rundir.files import load_model

    args, data = kept_run_args(__doc__.splitlines()[0])
    names = data.class_names
    said: dict[str, set] = {}  # text key -> the classes the LLM gave (its kept annotation LFs)
    for lf in load_model(args.run_dir).labeler.lfs:
        if lf.kind == "lookup" and lf.provenance.source == ANNOTATION_SOURCE:
            for key, name in lf.lookup.items():
                said.setdefault(key, set()).add(name)
    silver = {}
    for line in (args.run_dir / "silver.jsonl").read_text().splitlines():
        row = json.loads(line)
        silver[row["id"]] = set(row["labels"])
    rows = [(said.get(text_key(text)), silver[rid], {names[c] for c in np.flatnonzero(y)})
            for rid, text, y in zip(data.test.ids, data.test.texts, data.test.y)]
    labelled = [r for r in rows if r[0] is not None]
    others = [r for r in rows if r[0] is None]
    print(f"{len(labelled)} of {len(rows)} test rows labelled by the LLM")
    print("| rows | labels | micro-F1 | classes a row |\n|---|---|---|---|")
    for what, part, column in (("LLM-labelled", labelled, 0), ("LLM-labelled", labelled, 1), ("others", others, 1),
                               ("all", rows, 1)):
        print(f"| {what} | {'the LLM' if column == 0 else 'silver'} | {micro_f1([r[column] for r in part], [r[2] for r in part])} | "
              f"{np.mean([len(r[column]) for r in part]):.2f} (gold {np.mean([len(r[2]) for r in part]):.2f}) |")
    print(f"the LLM's sets where it labelled, silver elsewhere: "
          f"{micro_f1([r[0] if r[0] is not None else r[1] for r in rows], [r[2] for r in rows])}")


if __name__ == "__main__":
    main()
