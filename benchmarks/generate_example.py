"""Where `lfagent generate` spends its time on the bundled example (1,453 comments).

    python benchmarks/generate_example.py [--work /tmp/lfagent-gen-example]

1. `lfagent run examples/youtube-spam/task.yaml --llm none` (embeddings on, the default), its embedding
   cache in WORK/cache;
2. `lfagent generate` of the same unlabeled file, twice: with that cache (the run's own vectors are read,
   the usual first `generate`) and with an empty one (every text encoded, as for a corpus never seen);
3. the two parts of a cold generate measured alone: loading sentence-transformers and MiniLM, and
   encoding the 1,453 texts.
Prints a Markdown table and writes it, with the command, to benchmarks/results/generate_example.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASK = REPO / "examples" / "youtube-spam" / "task.yaml"
UNLABELED = REPO / "examples" / "youtube-spam" / "unlabeled.jsonl"

PARTS = """
import json, sys, time
t0 = time.perf_counter()
from lfagent.data.embed import Embedder, _load
_load()
t1 = time.perf_counter()
texts = [json.loads(line)["text"] for line in open(sys.argv[1])]
Embedder(None).encode(texts)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {len(texts)}")
"""


def cli(args: list[str], cache: Path) -> tuple[float, str]:
    env = {**os.environ, "LFAGENT_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lfagent.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/lfagent-gen-example")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warm, cold = work / "cache", work / "empty-cache"
    run_s, _ = cli(["run", str(TASK), "--out", str(work / "run"), "--llm", "none", "--quiet"], warm)
    rows = []
    for name, cache in (("the run's embedding cache", warm), ("an empty embedding cache", cold)):
        wall, out = cli(["generate", str(work / "run"), "--input", str(UNLABELED), "--out",
                         str(work / f"out-{cache.name}.jsonl"), "--quiet"], cache)
        labelling = float(re.search(r"now in ([\d.]+) s", out).group(1))
        rows.append((name, wall, labelling))
    load_s, encode_s, n = subprocess.run([sys.executable, "-c", PARTS, str(UNLABELED)], capture_output=True,
                                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                                         ).stdout.split()
    lines = ["# generate on the bundled example", "", "Command: `python benchmarks/generate_example.py`", "",
             "| generate with | wall s (CLI) | labelling s |", "|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {labelling:.1f} |" for name, wall, labelling in rows]
    lines += ["", f"- {n} records (examples/youtube-spam/unlabeled.jsonl); the run before it "
                  f"(`--llm none`, embeddings on) took {run_s:.1f} s",
              f"- a cold generate, its parts alone: loading sentence-transformers and MiniLM {float(load_s):.1f} s, "
              f"encoding the {n} texts {float(encode_s):.1f} s ({int(n) / float(encode_s):,.0f} texts/s)",
              f"- load average (1/5/15 min) after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
              "(other jobs share them)"]
    text = "\n".join(lines) + "\n"
    print(text)
    (REPO / "benchmarks" / "results" / "generate_example.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
