"""How well does each cross-fitting option's held-out seed score track the final few-shot expert's test score?

    python benchmarks/fewshot_crossfit.py --datasets trec,sms --draw 0 --out benchmarks/results/fewshot_crossfit.md

Options (100 seeds of an evals draw): `final` fits one expert on all seeds and scores the test split;
`cf2` = cross_fitted_proba with 2 folds (two half fine-tunes), `cf5` = 5 folds, `cf5-it4` = 5 folds with
4 pair iterations instead of 20. Each cross-fitted row scores the seeds with the test split's metric.
Rows are appended to the output as each finishes (a table, never an assertion on time).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

OPTIONS = {"final": None, "cf2": {"folds": 2}, "cf5": {"folds": 5}, "cf5-it4": {"folds": 5, "pair_iterations": 4}}


def run_option(name: str, data, draw) -> tuple[float, float]:
    from evals.metrics import prediction_scores
    from lfagent.fit.fewshot import FewShotExpert, cross_fitted_proba

    texts = [data.train.texts[i] for i in draw.seed_rows]
    y = data.train.y[draw.seed_rows]
    started = time.perf_counter()
    if OPTIONS[name] is None:
        expert = FewShotExpert(k=data.k, multi_label=data.multi_label, seed=draw.seed).fit(texts, y)
        probs, y_true = expert.predict_proba(data.test.texts), data.test.y
    else:
        probs = cross_fitted_proba(texts, y, k=data.k, multi_label=data.multi_label, seed=draw.seed, **OPTIONS[name])
        y_true = y
    score = prediction_scores(probs, y_true, multi_label=data.multi_label, positive_class=data.positive_class)
    return score["score"], time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    from evals.datasets import load_dataset, make_draw

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="trec,sms")
    parser.add_argument("--options", default="final,cf2,cf5-it4,cf5")
    parser.add_argument("--draw", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/fewshot_crossfit.md")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/fewshot_crossfit.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    with out.open("w", encoding="utf-8") as handle:
        handle.write(f"# Few-shot expert: cross-fitting options\n\n`{command}`\n\n"
                     f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores (shared)\n\n"
                     "| dataset | draw | option | score (final: test; cf*: held-out seeds) | wall s |\n"
                     "|---|---|---|---|---|\n")
    for name in args.datasets.split(","):
        data = load_dataset(name)
        draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=args.draw)
        for option in args.options.split(","):
            score, wall = run_option(option, data, draw)
            line = f"| {name} | {args.draw} | {option} | {score:.3f} | {wall:.0f} |\n"
            print(line, end="", flush=True)
            with out.open("a", encoding="utf-8") as handle:
                handle.write(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
