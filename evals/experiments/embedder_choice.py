"""Could a run pick its encoder from the seeds? lfagent.data.embedders.choose_embedder against the silver
scores each encoder actually gave.

    python -m evals.experiments.embedder_choice [--fast minilm-static-256] [--tolerance 0.03] [--folder DIR]

For every dataset and draw in both results files (evals/results/embedders/minilm and .../FAST, same
command, only LFAGENT_EMBEDDER differing), the seeds of that draw are embedded both ways and scored by
seed_separability (cross-validated on the 100 seeds only: what a run could compute); choose_embedder
picks one, and the row shows the lfagent-none silver score each encoder got on that draw. The
summary compares always-MiniLM, always-fast and the choice. Writes DIR/choice-FAST.md (DIR defaults to
evals/results/embedders; heldout-draws/ holds draws the tolerance was not set on).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from evals.datasets import load_dataset, make_draw
from lfagent.data.embedders import DEFAULT_EMBEDDER, choose_embedder, get_embedder, seed_separability

RESULTS = Path(__file__).resolve().parents[1] / "results" / "embedders"


def silver_scores(folder: Path) -> dict[tuple[str, int], float]:
    runs = json.loads((folder / "results.json").read_text())["runs"]
    return {(r["dataset"], r["draw"]): r["score"] for r in runs if r["system"] == "lfagent-none" and "error" not in r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", default="minilm-static-256")
    parser.add_argument("--tolerance", type=float, default=0.03)
    parser.add_argument("--folder", type=Path, default=RESULTS)
    args = parser.parse_args()
    slow_scores = silver_scores(args.folder / DEFAULT_EMBEDDER)
    fast_scores = silver_scores(args.folder / args.fast)
    from lfagent.data.embed import Embedder
    from lfagent.data.embed import default_cache_dir

    encoders = {DEFAULT_EMBEDDER: Embedder(default_cache_dir() / "embeddings.sqlite").encode,
                args.fast: get_embedder(args.fast).encode}
    rows, picked = [], {}
    for dataset, draw_seed in sorted(set(slow_scores) & set(fast_scores)):
        data = load_dataset(dataset)
        draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=draw_seed)
        texts = [data.train.texts[i] for i in draw.seed_rows]
        y = data.train.y[draw.seed_rows]
        sep = {name: seed_separability(encode(texts), y, seed=draw_seed) for name, encode in encoders.items()}
        pick = choose_embedder(sep, preferred=args.fast, tolerance=args.tolerance)
        got = fast_scores if pick == args.fast else slow_scores
        picked.setdefault(dataset, []).append((slow_scores[(dataset, draw_seed)], fast_scores[(dataset, draw_seed)],
                                               got[(dataset, draw_seed)], pick == args.fast))
        rows.append(f"| {dataset} | {draw_seed} | {sep[DEFAULT_EMBEDDER]:.3f} | {sep[args.fast]:.3f} | {pick} | "
                    f"{slow_scores[(dataset, draw_seed)]:.3f} | {fast_scores[(dataset, draw_seed)]:.3f} |")
        print(rows[-1], flush=True)
    summary = []
    for dataset, values in picked.items():
        slow, fast, chosen, used_fast = (np.array(v) for v in zip(*values))
        summary.append(f"| {dataset} | {slow.mean():.3f} | {fast.mean():.3f} | {chosen.mean():.3f} | "
                       f"{int(used_fast.sum())} of {len(used_fast)} |")
    command = "python -m evals.experiments.embedder_choice " + shlex.join(sys.argv[1:])
    text = (f"# Choosing the encoder from the seeds\n\n`{command}`\n\n"
            f"| dataset | draw | seed separability {DEFAULT_EMBEDDER} | seed separability {args.fast} | chosen | "
            f"silver {DEFAULT_EMBEDDER} | silver {args.fast} |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows)
            + f"\n\n| dataset | silver always {DEFAULT_EMBEDDER} | silver always {args.fast} | silver as chosen | "
            f"draws on {args.fast} |\n|---|---|---|---|---|\n" + "\n".join(summary) + "\n")
    out = args.folder / f"choice-{args.fast}.md"
    out.write_text(text)
    print("\n" + text + f"\nwrote {out}")


if __name__ == "__main__":
    main()
