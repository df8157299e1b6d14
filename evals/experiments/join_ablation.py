"""Where the fine-tuned expert's silver labels lose to SetFit alone: the label model's join, or calibration?

For each draw, one lfagent --llm none run (the default configuration; the expert's fine-tunes come from
the shared cache when the benchmark already made them), then its test rows scored five ways:
- silver: what silver.jsonl holds (product join on covered rows at the run's join weight, then the
  calibrator);
- raw product: the same before calibration;
- join none: the label model alone on covered rows, the expert elsewhere (uncalibrated);
- expert alone: the expert on every row (uncalibrated);
- setfit-seeds: SetFit on the seeds (the system of the same name).

    python -m evals.experiments.join_ablation [--datasets sms] [--draws 0,1,2] [--no-setfit]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from evals.bench import make_embedder
from evals.datasets import load_dataset
from evals.experiments.common import draw_context, score_on_test
from evals.systems import run_system, write_task_dir

COLUMNS = ["silver", "raw product", "join none", "expert alone", "coverage", "join weight"]


def variants(session) -> dict[str, np.ndarray]:
    from lfagent.fit.expert import expert_proba, join_experts

    result, views = session.result, session.corpus.expert_views
    labeler = result.labeler
    _, L = result.votes.matrices(labeler.lfs)
    emb = views.unl_emb if views is not None else session.corpus.unl_emb
    raw, covered = labeler.raw_proba(L, session.corpus.unl_emb, None if views is None else views.unl_emb)
    lm = labeler.fitted_label_model().predict_proba(L) if L.shape[1] else np.tile(labeler.prior, (len(L), 1))
    expert = expert_proba(labeler.expert, emb, labeler.k)
    return {"silver": result.probs, "raw product": raw,
            "join none": join_experts(lm, expert, covered, labeler.multi_label, "none"),
            "expert alone": expert, "covered": covered, "weight": labeler.join_weight}


def main(argv: list[str] | None = None) -> int:
    from lfagent import Session
    from lfagent.fit.fold_fit import PipelineConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="sms")
    parser.add_argument("--draws", default="0,1,2")
    parser.add_argument("--no-setfit", action="store_true")
    args = parser.parse_args(argv)
    embed = make_embedder()
    head = COLUMNS + ([] if args.no_setfit else ["setfit-seeds"])
    print("| dataset | draw | " + " | ".join(head) + " |\n|---|---|" + "---|" * len(head), flush=True)
    for name in args.datasets.split(","):
        data = load_dataset(name)
        n_test = len(data.test)
        for seed in map(int, args.draws.split(",")):
            ctx = draw_context(data, seed, embed)
            with tempfile.TemporaryDirectory(prefix="lfagent-join-") as tmp:
                task = write_task_dir(Path(tmp) / "task", ctx)
                with Session(task, Path(tmp) / "run", config=PipelineConfig(seed=seed)) as session:
                    session.fit()
                    got = variants(session)
            score = {key: score_on_test(probs[:n_test], data)
                     for key, probs in got.items() if key not in ("covered", "weight")}
            cells = [f"{score[c]:.3f}" for c in COLUMNS[:-2]] + [f"{got['covered'][:n_test].mean():.2f}",
                                                                 f"{got['weight']:g}"]
            if not args.no_setfit:
                out = run_system("setfit-seeds", ctx)
                cells.append(f"{score_on_test(out.test_probs, data):.3f}")
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
