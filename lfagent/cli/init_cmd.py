"""`lfagent init --labeled FILE --unlabeled PATH_OR_GLOB --text-column C --label-column C --out DIR`."""
from __future__ import annotations

import argparse
from pathlib import Path

from lfagent.data.init_task import DEFAULT_TEST_ROWS, DEFAULT_UNLABELED_ROWS, MIN_SEEDS_PER_CLASS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labeled", required=True, metavar="FILE",
                        help="labelled rows (CSV, JSONL or Parquet): the seeds, or the pool --seeds draws from")
    parser.add_argument("--unlabeled", required=True, action="extend", nargs="+", metavar="PATH_OR_GLOB",
                        help="rows to label (quote a glob: 'corpus/*.parquet'); one file is referenced, "
                             "several are sampled into DIR/unlabeled.jsonl")
    parser.add_argument("--text-column", required=True, metavar="NAME", help="column holding the text")
    parser.add_argument("--label-column", required=True, metavar="NAME",
                        help="column holding the label (a JSON list or `a|b` makes the task multi-label)")
    parser.add_argument("--out", required=True, metavar="DIR", help="task folder to write (task.yaml, seeds.jsonl)")
    parser.add_argument("--id-column", metavar="NAME", help="column holding a record id (default: `id` if present)")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help=f"draw N seeds, stratified by class (at least {MIN_SEEDS_PER_CLASS} each); "
                             f"the other labelled rows become the held-out test set (up to {DEFAULT_TEST_ROWS:,})")
    parser.add_argument("--classes", metavar="A,B,...", type=_names,
                        help="every class of the task, comma-separated: a class no labelled row carries is kept "
                             "(with a warning; `lfagent run` labels it from LFs that vote it), any other label "
                             "is refused (default: the labels found)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random draw")
    parser.add_argument("--name", help="task name (default: the folder's name)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--label-separator", metavar="SEP", help="multi-label cells split on SEP (default: detected)")
    group.add_argument("--single-label", action="store_true", help="never split label cells")
    parser.add_argument("--unlabeled-rows", type=int, default=DEFAULT_UNLABELED_ROWS, metavar="N",
                        help="rows sampled when --unlabeled names several files")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR/task.yaml")


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(args: argparse.Namespace) -> int:
    from lfagent.data.init_task import InitOptions, init_task

    result = init_task(InitOptions(
        labeled=Path(args.labeled), unlabeled=args.unlabeled, text_column=args.text_column,
        label_column=args.label_column, out=Path(args.out), id_column=args.id_column, seeds=args.seeds,
        seed=args.seed, name=args.name, separator=args.label_separator, single_label=args.single_label,
        unlabeled_rows=args.unlabeled_rows, force=args.force, classes=args.classes))
    kind = (f"multi-label (split on {result.separator!r})" if result.separator
            else "multi-label (lists)" if result.multi_label else "single-label")
    print(f"{len(result.classes)} classes, {kind}, {result.n_seeds:,} seeds of {result.n_labeled:,} labelled rows:")
    for name in result.classes:
        print(f"  {name}: {result.counts[name]:,}")
    folder = result.task_path.parent
    written = ["task.yaml", "seeds.jsonl"] + (["test.jsonl"] if result.n_test else [])
    if result.n_unlabeled_sampled is not None:
        written.append(f"unlabeled.jsonl ({result.n_unlabeled_sampled:,} rows sampled)")
    print(f"wrote {folder}/: {', '.join(written)}; unlabeled: {result.unlabeled}")
    for note in result.notes:
        print(note)
    print(f"next: describe the classes in {result.task_path}, then\n"
          f"  lfagent run {result.task_path} --out runs/{folder.resolve().name}")
    return 0
