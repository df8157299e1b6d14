"""`lfagent report RUN_DIR [--out RUN_DIR/report.html]`: a self-contained HTML report for a run."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `lfagent run --out`")
    parser.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    parser.add_argument("--card", action="store_true", help="also (re)write the dataset card RUN_DIR/CARD.md")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="leave embedding LFs out of the disagreement heatmap (no MiniLM)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="leave code LFs out of the disagreement heatmap (no sandbox workers)")


def main(args: argparse.Namespace) -> int:
    from lfagent.report import write_report, write_run_card

    path = write_report(args.run_dir, args.out, embeddings=not args.no_embeddings, sandbox=not args.no_sandbox)
    print(f"wrote {path}")
    if args.card:
        print(f"wrote {write_run_card(args.run_dir)}")
    return 0
