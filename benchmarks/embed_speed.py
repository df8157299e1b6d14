"""Encoding speed of the embedders (lfagent.data.embedders) on real texts, on this machine's cores.

    python benchmarks/embed_speed.py [--n 2000] [--static-n 100000] [--repeat 2] [--only minilm-static]

Texts: the train splits of youtube, sms and trec from ../shared/data, interleaved, cycled up to the
count asked (the static encoders need many more texts for a steady rate than MiniLM can do in
reasonable time). Each configuration runs in its own process, so the columns are:
  load s      import + load (and, for a static encoder whose cache folder is missing, distilling it)
  records/s   texts encoded per second, best of --repeat runs (the machine is shared: the best run is
              the one least slowed by other jobs)
  peak RSS    the child process's maximum resident set size (ru_maxrss), load and encoding included
  other CPU   cores used by processes outside the child during its best run (load on the machine)
Prints a Markdown table and writes it, with the command, to benchmarks/results/embed_speed.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "embed_speed.md"
# (embedder, label, extra settings for the child)
CONFIGS = [
    ("minilm", "sentence-transformers, batch 64, 2 torch threads", {"batch_size": 64, "threads": 2}),
    ("minilm", "sentence-transformers, batch 256, 2 torch threads", {"batch_size": 256, "threads": 2}),
    ("minilm-static-128", "model2vec distilled, PCA 128", {}),
    ("minilm-static-256", "model2vec distilled, PCA 256", {}),
    ("minilm-static-384", "model2vec distilled, PCA 384 (no reduction)", {}),
]


def load_texts(n: int) -> list[str]:
    from evals.datasets import load_dataset

    pools = [load_dataset(name).train.texts for name in ("youtube", "sms", "trec")]
    mixed = [text for row in zip(*pools) for text in row] + [t for p in pools for t in p[min(map(len, pools)):]]
    return [mixed[i % len(mixed)] for i in range(n)]


def child(spec: dict) -> None:
    """Runs in a fresh process: load one embedder, encode the texts, print a JSON line."""
    import torch

    torch.set_num_threads(spec.get("threads", 2))
    texts = load_texts(spec["n"])
    started = time.perf_counter()
    from lfagent.data.embedders import MiniLMEncoder, get_embedder

    encoder = MiniLMEncoder(batch_size=spec["batch_size"]) if spec["name"] == "minilm" else get_embedder(spec["name"])
    encoder.encode(texts[:32])  # the first call loads lazily; count it as loading
    load = time.perf_counter() - started
    cpu_others = _others_cpu()
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    seconds = time.perf_counter() - started
    others = (_others_cpu() - cpu_others) / seconds
    print(json.dumps({"load": load, "seconds": seconds, "n": len(vectors), "dim": int(vectors.shape[1]),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "others": others}))


def _others_cpu() -> float:
    """CPU seconds used on the machine by every process except this one (from /proc/stat and our own)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(map(int, fields)) - int(fields[3]) - int(fields[4])) / ticks  # minus idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy - own.ru_utime - own.ru_stime


def measure(name: str, settings: dict, n: int, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        spec = {"name": name, "n": n, "batch_size": settings.get("batch_size", 64),
                "threads": settings.get("threads", 2)}
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                             text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode != 0:
            raise SystemExit(f"{name} failed:\n{out.stderr[-2000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts for MiniLM")
    parser.add_argument("--static-n", type=int, default=100_000, help="texts for the static encoders")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated embedder names to run")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for name, label, settings in CONFIGS:
        if only and name not in only:
            continue
        n = args.n if name == "minilm" else args.static_n
        r = measure(name, settings, n, args.repeat)
        rows.append(f"| {name} | {label} | {r['dim']} | {r['n']:,} | {r['load']:.1f} | {r['n'] / r['seconds']:,.0f} "
                    f"| {r['rss_mb']:,.0f} MB | {r['others']:.2f} |")
        print(rows[-1], flush=True)
    table = "\n".join(["| embedder | how | dim | texts | load s | records/s | peak RSS | other CPU |",
                       "|---|---|---|---|---|---|---|---|", *rows])
    command = "python benchmarks/embed_speed.py " + shlex.join(sys.argv[1:])
    text = (f"# Embedder encoding speed\n\n`{command}` on {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n")
    print("\n" + table)
    if not only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
