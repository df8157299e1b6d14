"""One lfagent run with an LLM on one draw, refitted with each kept LLM LF dropped, and with every LLM LF
dropped (kept or not: another may take a dropped one's place).

Also prints each kept LF's precision on the unlabeled rows (the draw's test rows and extra train rows,
whose gold labels the benchmark has). LLM replies vary run to run (llama.cpp batching), so a rerun may
keep other LFs.

    python -m evals.experiments.llm_lf_ablation --dataset sms --draw 4 --llm local:qwen2.5-coder-1.5b
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from evals.datasets import load_dataset
from evals.experiments.common import draw_context, silver_score
from evals.systems import write_task_dir
from lfagent.agent.run import run_agent
from lfagent.fit.fold_fit import PipelineConfig
from lfagent.session import Session


def refit_without(task: Path, run: Path, out: Path, names: list[str], seed: int) -> list[str]:
    """Copy of the run at `out`, its LFs `names` dropped, refitted, silver written; the LLM LFs it keeps."""
    shutil.copytree(run, out)
    with Session(task, out, llm="none", config=PipelineConfig(seed=seed), progress=lambda m: None) as s:
        for name in names:
            s.drop(name)
        s.fit()
        s.write_outputs()
        return [r["name"] for r in s.lfs if r["status"] == "kept" and r["source"].startswith("llm")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="sms")
    parser.add_argument("--draw", type=int, default=4)
    parser.add_argument("--llm", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-llm-calls", type=int, default=40)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset)
    if data.multi_label:
        raise SystemExit(f"{data.name}: single-label tasks only")
    ctx = draw_context(data, args.draw)
    y_unl = np.concatenate([data.test.y, data.train.y[ctx.draw.extra_rows]])  # unlabeled.jsonl's order
    with tempfile.TemporaryDirectory() as tmp:
        task = write_task_dir(Path(tmp) / "task", ctx)
        run = Path(tmp) / "run"
        run_agent(task, run, llm=args.llm, rounds=args.rounds, max_llm_calls=args.max_llm_calls,
                  seed=args.draw, embed=True)
        with Session(task, run, llm="none", config=PipelineConfig(seed=args.draw), progress=lambda m: None) as s:
            s.fit()
            assert len(s.corpus.unl_texts) == len(y_unl)
            kept = [s.get_lf(r["name"]) for r in s.lfs if r["status"] == "kept"]
            every_llm_lf = [r["name"] for r in s.lfs if r["source"].startswith("llm")]
            _, L_unl = s.votes.matrices(kept)
        print(f"{data.name} draw {args.draw}, {args.llm}: silver {silver_score(run, data):.3f}\n")
        print("| kept LF | source | votes on unlabeled | precision there |\n|---|---|---|---|")
        for j, lf in enumerate(kept):
            voted = L_unl[:, j] != -1
            precision = float(np.mean(L_unl[voted, j] == y_unl[voted])) if voted.any() else float("nan")
            print(f"| {lf.name} | {lf.provenance.source} | {int(voted.sum())} | {precision:.2f} |")
        llm_lfs = [lf.name for lf in kept if lf.provenance.source.startswith("llm")]
        print("\n| refitted without | silver | LLM LFs kept then |\n|---|---|---|")
        for what, names in [(name, [name]) for name in llm_lfs] + [("every LLM LF", every_llm_lf)]:
            out = Path(tmp) / f"without-{len(names)}-{names[0] if names else 'none'}"
            now_kept = refit_without(task, run, out, names, args.draw)
            print(f"| {what} | {silver_score(out, data):.3f} | {', '.join(now_kept) or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
