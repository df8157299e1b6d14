"""What a worker process needs to label batches, shipped once and rebuilt once per process."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lfagent.generate.label_batch import label_batch
from lfagent.generate.model import Predictor, predictor_from_run
from lfagent.generate.stream import Batch

_cache: dict[str, tuple[Predictor, object]] = {}


@dataclass(frozen=True)
class LabelJob:
    """The run's model.json text and the output options: small, picklable, identical on every worker."""

    model_json: str
    votes: bool = False
    key: str = field(default="", compare=False)

    @classmethod
    def create(cls, model_json: str, votes: bool) -> "LabelJob":
        return cls(model_json, votes, hashlib.sha256(model_json.encode()).hexdigest()[:16])

    def predictor(self) -> Predictor:
        return self._state()[0]

    def _state(self) -> tuple[Predictor, object]:
        if self.key not in _cache:
            from lfagent.artifacts import RunModel

            run = RunModel.model_validate_json(self.model_json)
            predictor = predictor_from_run(run)
            _cache[self.key] = (predictor, _embedder(run.embedder) if predictor.needs_embeddings else None)
        return _cache[self.key]

    def label(self, batch: Batch, *, pool=None, code_votes: np.ndarray | None = None) -> pa.Table:
        predictor, embedder = self._state()
        embed = embedder.encode if embedder is not None else None
        return label_batch(predictor, batch, votes=self.votes, pool=pool, embed=embed, code_votes=code_votes)


def _embedder(name: str):
    from lfagent.embed import Embedder

    return Embedder(cache_path=None, embedder=name)  # the run's encoder, whatever $LFAGENT_EMBEDDER says
