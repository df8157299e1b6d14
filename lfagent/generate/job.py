"""What a worker process needs to label batches, shipped once and rebuilt once per process."""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lfagent.generate.label_batch import label_batch
from lfagent.rundir.files import RunModel
from lfagent.generate.stream import Batch

_cache: dict[str, tuple[RunModel, object, object]] = {}


@dataclass(frozen=True)
class LabelJob:
    """The run's model.json text and the output options: small, picklable, identical on every worker."""

    model_json: str
    votes: bool = False
    key: str = field(default="", compare=False)
    # The driver's embedding cache, resolved once there: workers (Ray actors included) read the vectors the
    # run cached instead of re-encoding them, so generate over the run's own records reproduces silver.jsonl.
    embed_cache: str | None = None
    # The run's fine-tuned expert encoder (RUN_DIR/expert/encoder), when its labeler has one.
    expert_dir: str | None = None

    @classmethod
    def create(cls, model_json: str, votes: bool, embed_cache: str | None = None,
               expert_dir: str | None = None) -> "LabelJob":
        # Where vectors come from is part of the key: a process may label for two copies of one run.
        key = hashlib.sha256("\0".join([model_json, embed_cache or "", expert_dir or ""]).encode()).hexdigest()[:16]
        return cls(model_json, votes, key, embed_cache, expert_dir)

    def model(self) -> RunModel:
        return self._state()[0]

    def _state(self) -> tuple[RunModel, object, object]:
        if self.key not in _cache:
            model = RunModel.model_validate_json(self.model_json)
            _cache[self.key] = (model, *run_embedders(model, self.embed_cache, self.expert_dir))
        return _cache[self.key]

    def label(self, batch: Batch, *, pool=None, code_votes: np.ndarray | None = None, progress=None) -> pa.Table:
        """`progress` (lfagent/counting.py) counts the batch's embedding, the slow part of a batch."""
        model, embedder, expert = self._state()
        embed = None if embedder is None else _counted(embedder, progress)
        embed_expert = None if expert is None else _counted(expert, progress)
        return label_batch(model, batch, votes=self.votes, pool=pool, embed=embed, embed_expert=embed_expert,
                           code_votes=code_votes)


def one_thread_per_process():
    """Cap this worker process at one thread (BLAS, OpenMP, torch): N workers share the cores, and small
    dense algebra is faster on one thread. Returns threadpoolctl's limits (keep it alive for their life).

    threadpoolctl caps only libraries already loaded, and torch is imported later, when a worker first
    loads a transformer encoder: torch takes its thread count from $OMP_NUM_THREADS at import."""
    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:  # a forked worker whose parent had imported it
        sys.modules["torch"].set_num_threads(1)
    return threadpool_limits(1)


def release() -> None:
    """Close the encoders this process keeps for its jobs (their cache connections): a run of generate is over."""
    while _cache:
        _, (_, *embedders) = _cache.popitem()
        for embedder in embedders:
            if embedder is not None:
                embedder.close()


def _counted(embedder, progress):
    """embedder.encode, counted as it goes."""
    def embed(texts):
        from lfagent.counting import counter, reporter

        with counter(progress, "embedding", len(texts), summary=False) as count:
            return embedder.encode(texts, progress=reporter(count))
    return embed


def run_embedders(model: RunModel, cache: str | None, expert_dir: str | None) -> tuple[object, object]:
    """The encoders a run's labeler reads: its embedder (embedding LFs, a frozen expert) and its expert's
    own fine-tuned one, each None when not needed."""
    labeler = model.labeler
    embedder = expert = None
    if model.uses_embeddings and labeler.needs_embeddings:
        embedder = _embedder(cache, labeler.embedder)
    if model.uses_embeddings and labeler.needs_expert_embeddings:
        expert = _embedder(cache, labeler.expert_embedder, expert_dir)
    return embedder, expert


def _embedder(cache: str | None, name: str | None, model_dir: str | None = None):
    """The run's embedder. Vectors the run cached are read, not recomputed: the encoder's output moves in
    the 7th decimal with the batch a text is encoded in, and reading them back keeps generate over the
    run's own records identical to its silver.jsonl. New texts are encoded and not added to the cache."""
    from lfagent.data.embed import Embedder

    return Embedder(cache, store=False, embedder=name or "minilm", model_dir=model_dir)  # the run's, whatever
    # $LFAGENT_EMBEDDER says
