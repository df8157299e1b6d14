"""How a multi-label run should decide `labels`: per-class cut-offs tuned for F1 on the cross-fitted seed
predictions, 0.5 on the calibrated probabilities, or even odds on the joined (uncalibrated) probabilities.
Scored as the benchmark scores silver labels (GoEmotions micro-F1, test rows), from one fit per draw.

    python -m evals.experiments.multilabel_decisions [--draws 10,0] [--expert finetuned] [--seed S] [--work DIR]

The fine-tuned expert's views come from the shared cache when the benchmark (or an earlier call) already
fine-tuned on the draw's seeds; otherwise expect about 10 minutes of fine-tuning a draw on 2 cores.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from evals.datasets import load_dataset
from evals.experiments.common import draw_context
from evals.metrics import prediction_scores
from evals.systems import write_task_dir


def rules(draw: int, expert: str, work: Path, seed: int, dataset: str = "goemotions") -> dict[str, float]:
    from lfagent import Session
    from lfagent.fit.calibrator import even_odds_thresholds, f1_thresholds
    from lfagent.fit.fold_fit import PipelineConfig

    data = load_dataset(dataset)
    task = write_task_dir(work / f"task-{draw}", draw_context(data, draw, embed=lambda texts: None))
    y, n = np.asarray(data.test.y), len(data.test)
    with Session(task, work / f"run-{draw}-{expert}", llm="none", config=PipelineConfig(expert=expert, seed=seed)) as session:
        session.fit()
        result = session.result
        calibrator = result.labeler.calibrator
        probs = result.probs[:n]
        f1_cuts = f1_thresholds(result.heldout_probs, session.corpus.seed_y)
        even_cuts = even_odds_thresholds(calibrator)

        def score(cuts) -> float:
            return prediction_scores(probs, y, multi_label=True, positive_class=None,
                                     decisions=probs >= np.asarray(cuts))["score"]

        return {"F1 cut-offs": score(f1_cuts), "0.5 calibrated": score(np.full(data.k, 0.5)),
                "even odds": score(even_cuts), "join weight": result.labeler.join_weight}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", default="10,0")
    parser.add_argument("--expert", default="finetuned", choices=["finetuned", "frozen"])
    parser.add_argument("--work", default=None, help="keep the task and run folders here")
    parser.add_argument("--seed", type=int, default=None,
                        help="the pipeline's seed (default: the draw's, as the benchmark runs it)")
    args = parser.parse_args(argv)
    columns = ["F1 cut-offs", "0.5 calibrated", "even odds", "join weight"]
    print(f"| draw ({args.expert}) | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns), flush=True)
    with tempfile.TemporaryDirectory(prefix="lfagent-ml-") as tmp:
        work = Path(args.work or tmp)
        for draw in map(int, args.draws.split(",")):
            row = rules(draw, args.expert, work, draw if args.seed is None else args.seed)
            print(f"| {draw} | " + " | ".join(f"{row[c]:.3f}" if c != "join weight" else str(row[c])
                                            for c in columns) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
