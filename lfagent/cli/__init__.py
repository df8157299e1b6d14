"""`lfagent` command line: argument parsing only; each command lives in lfagent/cli/.

Errors that users can act on (LFAgentError) print as one line with exit code 2; no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from lfagent.about import lfagent_version
from lfagent.errors import LFAgentError

COMMANDS = {
    # name: (module in lfagent.cli, help)
    "init": ("init_cmd", "write a task folder (task.yaml, seeds) from your own labelled and unlabeled files"),
    "run": ("run_cmd", "propose, score and keep LFs, fit the label model, write silver labels"),
    "lf": ("lf_cmd", "work with labeling-function files (lf apply)"),
    "generate": ("generate_cmd", "apply a run's LFs and label model to large corpora"),
    "train": ("train_cmd", "fine-tune an end model on a run's silver labels (generate can label with it)"),
    "report": ("report_cmd", "write a self-contained HTML report for a run"),
    "audit": ("audit_cmd", "rank likely seed-label errors and silver records worth a human look"),
    "repl": ("repl_cmd", "interactive session: inspect, steer, label and export"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfagent", description="Turn a task and ~100 seed labels into calibrated silver labels.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {lfagent_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        try:
            face = _face(module)
        except ModuleNotFoundError as exc:
            if exc.name != f"lfagent.cli.{module}":
                raise
            continue  # a command whose face is not built in this checkout
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        face.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def _face(module: str):
    return importlib.import_module(f"lfagent.cli.{module}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
            return int(_face(args._module).main(args) or 0)
    except LFAgentError as exc:
        print(f"lfagent {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lfagent {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line_warnings(command: str, fallback):
    """lfagent's own warnings (a class without seeds, ...) as one line, like its errors; others as usual."""
    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("lfagent"):
            print(f"lfagent {command}: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show


if __name__ == "__main__":
    sys.exit(main())
