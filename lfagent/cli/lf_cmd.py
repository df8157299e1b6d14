"""`lfagent lf apply LF.py [...] --input DATA --out VOTES.jsonl`: run code LFs in the sandbox.

VOTES.jsonl has one line per input record: {"id": ..., "votes": {"<lf name>": "SPAM" | null}}; the id is
the record's id field (`id`, or the task's id_field), else the 0-based record number.
An LF that is rejected (lint, crash, timeout, bad return value) is left out of VOTES, its reason goes to
stderr as "LF '<name>' rejected: <reason>", and the exit code is 1; the other LFs' votes are still
written. Bad arguments or data: exit 2 with one line on stderr. Never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lfagent.errors import InputError, LFAgentError, LFRejected

EXIT_LF_REJECTED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lf_command", metavar="SUBCOMMAND")
    apply = sub.add_parser("apply", help="apply code LF files to a data file inside the sandbox",
                           description="Apply code LFs (.py files defining `def label(record)`) to records, "
                                       "inside the OS sandbox, and write their votes as JSONL.")
    apply.add_argument("lf_files", nargs="+", metavar="LF.py", help="code LF files (name = file stem or NAME = '...')")
    apply.add_argument("--input", required=True, help="records: JSONL, CSV, Parquet or WRENCH JSON")
    apply.add_argument("--out", required=True, help="where to write the votes (JSONL)")
    classes = apply.add_mutually_exclusive_group()
    classes.add_argument("--classes", help="comma-separated class names; other return values are errors")
    classes.add_argument("--task", help="task.yaml: classes, text field and id field come from it")
    apply.add_argument("--text-field", default=None,
                       help="record field holding the text; LFs also see it as record['text'] (default: text)")
    apply.add_argument("--timeout", type=float, default=5.0, help="base seconds per sandbox call (default 5)")
    apply.add_argument("--workers", type=int, default=2, help="sandbox worker processes (default 2)")


def main(args: argparse.Namespace) -> int:
    if getattr(args, "lf_command", None) != "apply":
        print("lfagent lf: choose a subcommand: apply", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _apply(args)
    except LFAgentError as exc:
        print(f"lfagent lf apply: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the command must never end in a traceback
        print(f"lfagent lf apply: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _apply(args: argparse.Namespace) -> int:
    from lfagent.sandbox import SandboxPool, load_code_lf

    class_names, text_field, id_field, hidden_field = _task_settings(args)
    lfs, rejected = [], {}
    for path in args.lf_files:
        try:
            lfs.append(load_code_lf(path))
        except LFRejected as exc:
            rejected[exc.lf_name] = exc.reason
    _check_unique_names([lf.name for lf in lfs] + list(rejected))
    ids, records = _read_records(args.input, text_field, id_field, hidden_field)
    if args.workers < 1 or args.timeout <= 0:
        raise InputError("--workers must be >= 1 and --timeout > 0")
    with SandboxPool(workers=args.workers, timeout_s=args.timeout) as pool:
        result = pool.apply(lfs, records, class_names)
    rejected.update(result.errors)
    kept = [lf.name for lf in lfs if lf.name not in rejected]
    _write_votes(Path(args.out), ids, {name: result.votes[name] for name in kept})
    for name, reason in rejected.items():
        print(f"lfagent lf apply: LF {name!r} rejected: {reason}", file=sys.stderr)
    print(f"wrote votes of {len(kept)} LF(s) on {len(records)} record(s) to {args.out}")
    return EXIT_LF_REJECTED if rejected else 0


def _task_settings(args) -> tuple[list[str] | None, str, str, str | None]:
    """(class names or None, text field, id field, field hidden from LFs: the gold label)."""
    if args.task:
        from lfagent.task import load_task

        task = load_task(args.task)
        return task.class_names, args.text_field or task.text_field, task.id_field, task.label_field
    class_names = None
    if args.classes is not None:
        class_names = [c.strip() for c in args.classes.split(",") if c.strip()]
        if not class_names or len(set(class_names)) != len(class_names):
            raise InputError("--classes needs distinct, non-empty, comma-separated names")
    return class_names, args.text_field or "text", "id", None


def _check_unique_names(names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"two LF files have the same LF name {repeated}; set NAME = '...' in one of them")


def _read_records(path, text_field: str, id_field: str, hidden_field: str | None):
    from lfagent.data.readers import iter_rows

    ids, records = [], []
    for number, (_, row) in enumerate(iter_rows(path)):
        ids.append(row.get(id_field, number) if _is_plain(row.get(id_field, number)) else str(row[id_field]))
        record = {k: v for k, v in row.items() if k != hidden_field}
        if text_field != "text" and text_field in row:
            record["text"] = row[text_field]
        records.append(record)
    return ids, records


def _is_plain(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _write_votes(path: Path, ids: list, votes: dict[str, list]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            for row, record_id in enumerate(ids):
                line = {"id": record_id, "votes": {name: column[row] for name, column in votes.items()}}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write votes: {exc.strerror}", path=path) from None
