"""What a worker process needs to label batches, shipped once and rebuilt once per process."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lfagent.generate.label_batch import label_batch
from lfagent.rundir.files import RunModel
from lfagent.generate.stream import Batch

_cache: dict[str, tuple[RunModel, object]] = {}


@dataclass(frozen=True)
class LabelJob:
    """The run's model.json text and the output options: small, picklable, identical on every worker."""

    model_json: str
    votes: bool = False
    key: str = field(default="", compare=False)
    # The driver's embedding cache, resolved once there: workers (Ray actors included) read the vectors the
    # run cached instead of re-encoding them, so generate over the run's own records reproduces silver.jsonl.
    embed_cache: str | None = None

    @classmethod
    def create(cls, model_json: str, votes: bool, embed_cache: str | None = None) -> "LabelJob":
        return cls(model_json, votes, hashlib.sha256(model_json.encode()).hexdigest()[:16], embed_cache)

    def model(self) -> RunModel:
        return self._state()[0]

    def _state(self) -> tuple[RunModel, object]:
        if self.key not in _cache:
            model = RunModel.model_validate_json(self.model_json)
            needed = model.uses_embeddings and model.labeler.needs_embeddings
            embedder = _embedder(self.embed_cache, model.labeler.embedder) if needed else None
            _cache[self.key] = (model, embedder)
        return _cache[self.key]

    def label(self, batch: Batch, *, pool=None, code_votes: np.ndarray | None = None, progress=None) -> pa.Table:
        """`progress` (lfagent/counting.py) counts the batch's embedding, the slow part of a batch."""
        model, embedder = self._state()
        embed = None if embedder is None else _counted(embedder, progress)
        return label_batch(model, batch, votes=self.votes, pool=pool, embed=embed, code_votes=code_votes)


def _counted(embedder, progress):
    """embedder.encode, counted as it goes."""
    def embed(texts):
        from lfagent.counting import counter, reporter

        with counter(progress, "embedding", len(texts), summary=False) as count:
            return embedder.encode(texts, progress=reporter(count))
    return embed


def _embedder(cache: str | None, name: str | None):
    """The run's embedder. Vectors the run cached are read, not recomputed: the encoder's output moves in
    the 7th decimal with the batch a text is encoded in, and reading them back keeps generate over the
    run's own records identical to its silver.jsonl. New texts are encoded and not added to the cache."""
    from lfagent.data.embed import Embedder

    return Embedder(cache, store=False, embedder=name or "minilm")  # the run's, whatever $LFAGENT_EMBEDDER says
