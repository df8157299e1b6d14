"""A seeded synthetic corpus of YouTube-like comments (spam and ham phrases mixed) for scale benchmarks.

    write_synthetic_corpus("/tmp/comments.jsonl", 1_000_000, seed=0)

Records are {"id": "syn-<i>", "text": ..., "video": ..., "gold": "SPAM"|"HAM"}; the gold label is the class
whose phrases dominate the comment (a rough truth: enough to sanity-check, not to evaluate).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SPAM_PHRASES = (
    "check out my channel", "subscribe to my channel", "please subscribe", "visit my website",
    "click here", "free gift cards", "http://bit.ly/{n}", "https://www.{w}.com/{n}", "follow me on twitter",
    "I will subscribe back", "like and share", "earn money from home", "check my new video", "sub4sub",
    "promo code {n}", "win a free iphone", "check out this playlist", "my mixtape is on soundcloud",
)
HAM_PHRASES = (
    "love this song", "she is perfect", "this video is amazing", "who is watching in 2015",
    "the beat is so good", "best song ever", "I cried at the end", "this never gets old",
    "the dance is hilarious", "her voice is beautiful", "so many memories", "I love the chorus",
    "this song is a masterpiece", "still listening every day", "the lyrics hit different",
)
FILLERS = ("", "", "lol", "omg", "wow", "guys", "!!!", "\u263a", "\ufeff", "haha", "...", "<3")
VIDEOS = ("Psy", "Katy Perry", "LMFAO", "Eminem", "Shakira")
WORDS = ("music", "promo", "gaming", "vlog", "deals", "beats")


def synthetic_comments(n: int, seed: int = 0, spam_rate: float = 0.45) -> Iterator[dict]:
    """Yield `n` comments; the same seed always yields the same corpus."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 10_000):
        size = min(10_000, n - start)
        spam = rng.random(size) < spam_rate
        n_main = rng.integers(1, 3, size)
        mixed = rng.random(size) < 0.15  # a phrase of the other class now and then
        picks = rng.integers(0, 1 << 30, (size, 4))
        for i in range(size):
            yield _comment(start + i, bool(spam[i]), int(n_main[i]), bool(mixed[i]), picks[i])


def _comment(index: int, spam: bool, n_main: int, mixed: bool, picks: np.ndarray) -> dict:
    main, other = (SPAM_PHRASES, HAM_PHRASES) if spam else (HAM_PHRASES, SPAM_PHRASES)
    parts = [main[(int(picks[0]) >> (5 * t)) % len(main)] for t in range(n_main)]
    if mixed:
        parts.insert(int(picks[1]) % (len(parts) + 1), other[int(picks[1]) % len(other)])
    parts.append(FILLERS[int(picks[2]) % len(FILLERS)])
    text = " ".join(p for p in parts if p).format(n=int(picks[3]) % 100_000, w=WORDS[int(picks[3]) % len(WORDS)])
    if int(picks[2]) % 3 == 0:
        text = text.capitalize()
    return {"id": f"syn-{index}", "text": text, "video": VIDEOS[int(picks[1]) % len(VIDEOS)],
            "gold": "SPAM" if spam else "HAM"}


def write_synthetic_corpus(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write the corpus as JSONL or Parquet (by suffix), streaming in chunks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        _write_parquet(path, synthetic_comments(n, seed))
    else:
        with open(path, "w", encoding="utf-8") as handle:
            for record in synthetic_comments(n, seed):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _write_parquet(path: Path, records: Iterator[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    chunk: list[dict] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == 50_000:
            writer = _write_chunk(path, writer, chunk, pa, pq)
            chunk = []
    if chunk or writer is None:
        writer = _write_chunk(path, writer, chunk, pa, pq)
    writer.close()


def _write_chunk(path, writer, chunk, pa, pq):
    table = pa.Table.from_pylist(chunk, schema=pa.schema([(c, pa.string()) for c in ("id", "text", "video", "gold")]))
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer
