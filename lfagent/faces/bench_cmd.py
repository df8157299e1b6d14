"""`lfagent bench ...`: the evaluation benchmark, same arguments as `python -m evals`.

The harness lives in the repository's `evals/` folder (not in the installed package), so this face
finds it beside the `lfagent/` package of an editable install.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lfagent.errors import InputError


def _import_evals_main():
    repo = Path(__file__).resolve().parents[2]
    if (repo / "evals" / "__main__.py").is_file() and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        import evals.__main__ as evals_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("evals", "evals.__main__"):
            raise
        return None
    return evals_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    evals_main = _import_evals_main()
    if evals_main is None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    evals_main.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    evals_main = _import_evals_main()
    if evals_main is None:
        raise InputError("the benchmark needs a source checkout of lfagent (its evals/ folder); "
                         "run `lfagent bench` from an editable install (pip install -e .)")
    return evals_main.main(args, command="lfagent bench " + shlex.join(sys.argv[2:]))
