"""`lfagent repl TASK.yaml [--run RUN_DIR] [--llm none|local|openai:MODEL]`: interactive session.

With an existing RUN_DIR the session comes back as it was left (LFs, pins, edits, LLM calls all live in
the run store). Piped stdin runs one command per line: `echo lfs | lfagent repl task.yaml --llm none`.
"""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task.yaml")
    parser.add_argument("--run", metavar="RUN_DIR", help="run directory (default runs/TASK_NAME); "
                        "an existing one is restored")
    parser.add_argument("--llm", default=None,
                        help="none | local | local:NAME_OR_PATH.gguf | openai:MODEL (default: openai when "
                             "OPENAI_API_KEY/OPENAI_BASE_URL is set, else local)")
    parser.add_argument("--no-embeddings", action="store_true", help="no MiniLM LFs or fallback (faster start)")
    parser.add_argument("--expert", choices=("finetuned", "frozen"), default=None,
                        help="a new run's embedding expert: fine-tuned on the seeds (default; minutes at the "
                             "first fit) or frozen MiniLM; an existing run keeps its own")
    parser.add_argument("--no-fit", action="store_true", help="do not fit on start")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of failing commands")


def main(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from lfagent.repl.app import ProgressSink, start
    from lfagent.session import Session

    interactive = sys.stdin.isatty()
    width = None if interactive or os.environ.get("COLUMNS") else 160  # piped: do not squeeze tables to 80
    console = Console(width=width)
    errors = Console(stderr=True, width=width)
    sink = ProgressSink(errors, quiet=not (interactive or errors.is_terminal))
    errors.print(f"loading {args.task}", style="dim")
    if args.expert:  # read by a new run's PipelineConfig; a restored run's stored config wins
        os.environ["LFAGENT_EXPERT"] = args.expert
    session = Session(args.task, run_dir=args.run, llm=args.llm or "auto", progress=sink,
                      embed=not args.no_embeddings)
    try:
        return start(session, console=console, errors=errors, sink=sink, interactive=interactive,
                     fit_first=not args.no_fit, debug=args.debug)
    finally:
        session.close()

