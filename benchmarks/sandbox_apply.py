"""Benchmark: 20 keyword/regex code LFs x 50,000 YouTube comments.

Compares LF evaluations per second of the sandboxed pool (2 workers, 1 worker), a raw in-process loop
over the same `label` functions, and Snorkel 0.10's PandasLFApplier. Prints a Markdown table and writes
it to benchmarks/results/sandbox_apply.md.

    python benchmarks/sandbox_apply.py [--records 50000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "sandbox_apply.md"

# (name, class, regex) -> one code LF each, as an LLM would write it.
CUES = [
    ("check_out", "SPAM", r"check out|check it out"), ("subscribe", "SPAM", r"subscrib"),
    ("my_channel", "SPAM", r"my channel|my videos?"), ("link", "SPAM", r"https?://|www\."),
    ("please", "SPAM", r"\bplease\b|\bpls\b"), ("free", "SPAM", r"\bfree\b|gift card"),
    ("money", "SPAM", r"\bmoney\b|\$\d+|earn"), ("follow", "SPAM", r"follow me|add me"),
    ("visit", "SPAM", r"\bvisit\b|\bgo to\b"), ("like_comment", "SPAM", r"like this comment|thumbs up"),
    ("facebook", "SPAM", r"facebook|twitter|instagram"), ("win", "SPAM", r"\bwin\b|giveaway"),
    ("song", "HAM", r"\bsong\b"), ("love", "HAM", r"\blove\b"), ("views", "HAM", r"billion|views"),
    ("best", "HAM", r"\bbest\b|\bawesome\b"), ("shakira", "HAM", r"shakira|eminem|katy|psy\b|lmfao"),
    ("dance", "HAM", r"danc"), ("year", "HAM", r"\b20\d\d\b"), ("short_text", "HAM", None),
]


def lf_source(label: str, pattern: str | None) -> str:
    if pattern is None:
        return f'def label(record):\n    return "{label}" if len(record["text"]) < 25 else None\n'
    return (f"import re\nPATTERN = re.compile(r{pattern!r}, re.I)\n\n"
            f"def label(record):\n    return \"{label}\" if PATTERN.search(record[\"text\"]) else None\n")


def load_texts(n: int) -> list[str]:
    texts = []
    for split in ("train", "valid", "test"):
        path = DATA / "wrench-youtube" / f"{split}.json"
        texts += [entry["data"]["text"] for entry in json.loads(path.read_text()).values()]
    return [texts[k % len(texts)] for k in range(n)]


def compile_in_process(source: str):
    namespace: dict = {}
    exec(compile(source, "<bench>", "exec"), namespace)  # trusted benchmark code, host side
    return namespace["label"]


def time_once(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def time_paths_interleaved(lfs, sources, records, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds per path, the paths taking turns so load from elsewhere hits all alike."""
    from lfagent.sandbox import SandboxPool

    functions = [compile_in_process(s) for s in sources]
    pools = {"sandbox pool, 2 workers": SandboxPool(workers=2), "sandbox pool, 1 worker": SandboxPool(workers=1)}
    paths = {"raw in-process loop (no isolation)": lambda: [[f(r) for r in records] for f in functions]}
    for label, pool in pools.items():
        result = pool.apply(lfs, records, ["HAM", "SPAM"])  # starts the workers outside the timing
        assert not result.errors, result.errors
        paths[label] = lambda pool=pool: pool.apply(lfs, records, ["HAM", "SPAM"]).matrix(["HAM", "SPAM"])
    best = {label: float("inf") for label in paths}
    try:
        for _ in range(repeats):
            for label, run in paths.items():
                best[label] = min(best[label], time_once(run))
    finally:
        for pool in pools.values():
            pool.close()
    return best


def bench_snorkel(sources, records, repeats):
    try:
        import pandas as pd
        from snorkel.labeling import PandasLFApplier, labeling_function

        lfs = []
        for k, source in enumerate(sources):
            inner = compile_in_process(source)
            lfs.append(labeling_function(name=f"lf{k}")(lambda x, f=inner: {"HAM": 0, "SPAM": 1}.get(f({"text": x.text}), -1)))
        frame = pd.DataFrame({"text": [r["text"] for r in records]})
        return min(time_once(lambda: PandasLFApplier(lfs).apply(frame, progress_bar=False))
                   for _ in range(repeats)), None
    except Exception as exc:  # noqa: BLE001 - report, then fall back to the field-notes figure
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from lfagent.lf import LabelingFunction

    sources = [lf_source(label, pattern) for _, label, pattern in CUES]
    lfs = [LabelingFunction(name=name, kind="code", source=src) for (name, _, _), src in zip(CUES, sources)]
    records = [{"text": t} for t in load_texts(args.records)]
    evaluations = len(records) * len(lfs)
    load_before = os.getloadavg()[0]
    best = time_paths_interleaved(lfs, sources, records, args.repeats)
    raw = best["raw in-process loop (no isolation)"]
    rows = list(best.items())
    snorkel, snorkel_error = bench_snorkel(sources, records, max(1, args.repeats // 3))
    if snorkel is not None:
        rows.append(("Snorkel 0.10 PandasLFApplier", snorkel))
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    table = render(rows, raw, snorkel, snorkel_error, evaluations, len(lfs), len(records), load)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n")


def render(rows, raw, snorkel, snorkel_error, evaluations, m, n, load) -> str:
    snorkel_rate = evaluations / snorkel if snorkel else 66_000  # FIELD-NOTES: 55-78k evals/s
    lines = [f"Command: `python benchmarks/sandbox_apply.py` ({m} code LFs x {n:,} YouTube texts = "
             f"{evaluations:,} evaluations; best of repeats, paths interleaved; Python {platform.python_version()}, "
             f"{os.cpu_count()} cores, {load})", "",
             "| path | seconds | LF evals/s | time vs raw loop | speed vs Snorkel PandasLFApplier |",
             "|---|---|---|---|---|"]
    for label, seconds in rows:
        rate = evaluations / seconds
        lines.append(f"| {label} | {seconds:.3f} | {rate:,.0f} | {seconds / raw:.2f}x | {rate / snorkel_rate:.1f}x |")
    if snorkel is None:
        lines.append(f"| Snorkel 0.10 PandasLFApplier (FIELD-NOTES figure, not measured: {snorkel_error}) "
                     f"| - | 55,000-78,000 | - | 1.0x (66k midpoint) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
