"""How much MiniLM's vectors move with the batch a text is encoded in (why generate reads the run's cache).

    python -m benchmarks.embed_batch_noise [--n 600]

Encodes the example's first N unlabeled texts three ways (one call; chunks of 37; reversed order) and
prints the largest absolute difference per way and the share of vectors that differ at all.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

UNLABELED = Path(__file__).resolve().parents[1] / "examples" / "youtube-spam" / "unlabeled.jsonl"


def main() -> None:
    from lfagent.data.embed import Embedder

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    n = parser.parse_args().n
    texts = [json.loads(line)["text"] for line in UNLABELED.read_text().splitlines()][:n]
    embedder = Embedder(None)
    whole = embedder.encode(texts)
    ways = {"chunks of 37": np.vstack([embedder.encode(texts[i:i + 37]) for i in range(0, n, 37)]),
            "reversed order": embedder.encode(texts[::-1])[::-1]}
    print(f"| way ({n} texts, MiniLM) | max abs difference | vectors that differ |\n|---|---|---|")
    for name, other in ways.items():
        print(f"| {name} | {np.abs(other - whole).max():.1e} | {(other != whole).any(axis=1).mean():.2f} |")


if __name__ == "__main__":
    main()
