"""`python -m evals.merge --out DIR SRC1 SRC2 ...`: one table from benchmark runs over different draws.

A long LLM benchmark is run in parts (draws 0-1, then `--first-draw 2 --draws 3`); this joins their
results.json files into one RESULTS.md, so a figure quoted over all draws comes from a file, not from
arithmetic by hand. The parts must share the protocol (seeds, unlabeled pool, rounds, budget) and may not
repeat a (dataset, system, draw).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from lfagent.errors import InputError
from lfagent.rundir.read import read_json

# Settings that change what a draw measures: parts that differ here are not one benchmark.
PROTOCOL = ("n_seeds", "extra_unlabeled", "rounds", "max_llm_calls", "zeroshot_limit")


def merge_results(parts: list[tuple[str, dict]]) -> dict:
    """Join (name, results) parts; raises InputError naming the part and field that do not fit."""
    from evals.bench import summarize_dataset

    if not parts:
        raise InputError("nothing to merge: give at least one results folder")
    first_name, first = parts[0]
    runs, datasets, seen = [], dict(first["datasets"]), {}
    for name, part in parts:
        for key in PROTOCOL:
            if part["config"].get(key) != first["config"].get(key):
                raise InputError(f"{name}: config field {key!r} is {part['config'].get(key)!r} but "
                                 f"{first['config'].get(key)!r} in {first_name}; these runs are not one benchmark")
        for dataset, meta in part["datasets"].items():
            if datasets.setdefault(dataset, meta) != meta:
                raise InputError(f"{name}: dataset {dataset!r} differs from the one in an earlier part "
                                 "(other data folder or split)")
        for row in part["runs"]:
            key = (row["dataset"], row["system"], row["draw"])
            if key in seen:
                raise InputError(f"{name}: {key[0]} draw {key[2]} of {key[1]} is also in {seen[key]}")
            seen[key] = name
            runs.append(row)
    systems = list(dict.fromkeys(s for _, part in parts for s in part["config"]["systems"]))
    draw_seeds = sorted({row["draw"] for row in runs})
    config = {**first["config"], "systems": systems, "datasets": list(datasets), "draws": len(draw_seeds),
              "first_draw": draw_seeds[0] if draw_seeds else 0, "draw_seeds": draw_seeds}
    summary = [s for dataset in datasets for s in summarize_dataset(dataset, systems, runs)]
    commits = list(dict.fromkeys(part.get("machine", {}).get("git_commit") or "unknown" for _, part in parts))
    return {"config": config, "datasets": datasets, "runs": runs, "summary": summary,
            "machine": {**first.get("machine", {}), "git_commit": ", ".join(commits)},
            "merged_from": [{"dir": name, "command": part.get("command", ""),
                             "git_commit": part.get("machine", {}).get("git_commit"),
                             "started": part.get("started", ""), "finished": part.get("finished", "")}
                            for name, part in parts]}


def read_part(folder: str) -> tuple[str, dict]:
    path = Path(folder) / "results.json"
    data = read_json(path, None)
    if data is None:
        raise InputError("no results.json (is this a folder `python -m evals --out` wrote?)", path=path)
    missing = [key for key in ("config", "datasets", "runs") if key not in data]
    if missing:
        raise InputError(f"missing {', '.join(missing)}: not a benchmark results file", path=path)
    return folder, data


def cli(argv: list[str] | None = None) -> int:
    from evals.report import console_tables, write_results

    parser = argparse.ArgumentParser(prog="python -m evals.merge", description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", metavar="DIR", help="folders holding a results.json")
    parser.add_argument("--out", required=True, help="where the joined RESULTS.md, results.json, results.png go")
    args = parser.parse_args(argv)
    try:
        results = merge_results([read_part(folder) for folder in args.parts])
    except InputError as exc:
        print(f"evals.merge: error: {exc}", file=sys.stderr)
        return 2
    results["command"] = "python -m evals.merge " + shlex.join(argv if argv is not None else sys.argv[1:])
    paths = write_results(results, args.out)
    print(console_tables(results))
    print(f"\nwrote {paths['markdown']}, {paths['json'].name}, {paths['plot'].name}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
