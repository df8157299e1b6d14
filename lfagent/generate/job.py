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

            predictor = predictor_from_run(RunModel.model_validate_json(self.model_json))
            _cache[self.key] = (predictor, _embedder() if predictor.needs_embeddings else None)
        return _cache[self.key]

    def label(self, batch: Batch, *, pool=None, code_votes: np.ndarray | None = None, progress=None) -> pa.Table:
        """`progress` (lfagent/counting.py) counts the batch's embedding, the slow part of a batch."""
        predictor, embedder = self._state()
        embed = None
        if embedder is not None:
            def embed(texts):
                from lfagent.counting import counter, reporter

                with counter(progress, "embedding", len(texts), summary=False) as count:
                    return embedder.encode(texts, progress=reporter(count))
        return label_batch(predictor, batch, votes=self.votes, pool=pool, embed=embed, code_votes=code_votes)


def _embedder():
    from lfagent.embed import Embedder
    from lfagent.session import default_cache_dir

    # The run cached the vectors of its own records: labelling those again (the usual first `generate`)
    # then costs no MiniLM pass, and gives them exactly the run's vectors. New texts are not written back.
    return Embedder(default_cache_dir() / "embeddings.sqlite", read_only=True)
