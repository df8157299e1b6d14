"""Run one benchmark system on one draw, as `python -m evals` does, and keep its lfagent run directory (the
benchmark deletes it) so that it can be looked into, e.g. with evals.experiments.join_at_test.

    python -m evals.experiments.keep_run DATASET DRAW SYSTEM OUT_DIR [--data-dir ../shared/data]

The run lands in OUT_DIR/run (the task in OUT_DIR/task). Fine-tunes come from the shared cache when the
benchmark already made them for that draw.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from evals.datasets import DEFAULT_DATA_DIR, load_dataset, make_draw


def main() -> None:
    import evals.systems as systems
    from evals.systems import DrawContext, run_system

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("draw", type=int)
    parser.add_argument("system")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    @contextlib.contextmanager
    def kept(prefix: str = "", dir=None):
        args.out_dir.mkdir(parents=True, exist_ok=True)
        yield str(args.out_dir)

    systems.tempfile.TemporaryDirectory = kept  # run_lfagent's temporary folder becomes OUT_DIR
    data = load_dataset(args.dataset, args.data_dir)
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=args.draw)  # the benchmark's defaults
    out = run_system(args.system, DrawContext(data=data, draw=draw, embed=None))
    print(f"{args.system} on {args.dataset} draw {args.draw}: {out.extra}; run in {args.out_dir / 'run'}")


if __name__ == "__main__":
    main()
