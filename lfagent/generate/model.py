"""A run's model.json turned back into a labeler: votes -> label model -> fallback -> calibration.

Mirrors FittedModel.predict (lfagent/pipeline.py) followed by the run's calibrator, so `generate` gives
the same probabilities as the run's own silver.jsonl for the same records.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lfagent.apply import apply_lfs, is_trusted
from lfagent.artifacts import RunModel, fallback_probs
from lfagent.calibration import Calibrator
from lfagent.lf import ABSTAIN, LabelingFunction


@dataclass
class Predictor:
    """Everything needed to label a batch the way the run did. Picklable (workers rebuild it once)."""

    lfs: list[LabelingFunction]
    class_names: list[str]
    multi_label: bool
    label_model: object | None
    calibrator: Calibrator
    fallback: object | None  # FallbackState
    prior: np.ndarray
    run_id: str
    lf_set_hash: str
    text_field: str = "text"

    @property
    def code_columns(self) -> list[int]:
        """Columns of L whose LF runs in the sandbox (code, and regexes an LLM wrote)."""
        return [j for j, lf in enumerate(self.lfs) if not is_trusted(lf)]

    @property
    def needs_embeddings(self) -> bool:
        return self.fallback is not None or any(lf.kind == "embedding" for lf in self.lfs)

    def votes(self, texts: list[str], rows: list[dict] | None = None, *, pool=None,
              embeddings: np.ndarray | None = None, code_votes: np.ndarray | None = None) -> np.ndarray:
        """L (n x m). `code_votes` (n x len(code_columns)), computed elsewhere, spares the sandbox here."""
        if code_votes is None:
            return apply_lfs(self.lfs, texts, self.class_names, rows=rows, embeddings=embeddings, pool=pool,
                             text_field=self.text_field).L
        code = self.code_columns
        trusted = [j for j in range(len(self.lfs)) if j not in set(code)]
        L = np.full((len(texts), len(self.lfs)), ABSTAIN, dtype=np.int16)
        if trusted:
            L[:, trusted] = apply_lfs([self.lfs[j] for j in trusted], texts, self.class_names,
                                      embeddings=embeddings).L
        if code:
            L[:, code] = code_votes
        return L

    def probabilities(self, L: np.ndarray, embeddings: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (n x k) and the covered flag (n,) from votes."""
        n = L.shape[0]
        covered = (L != ABSTAIN).any(axis=1) if L.shape[1] else np.zeros(n, dtype=bool)
        if L.shape[1] and self.label_model is not None:
            raw = np.asarray(self.label_model.predict_proba(L), dtype=float)
        else:
            raw = np.tile(self.prior, (n, 1))
        uncovered = ~covered
        if uncovered.any():
            if self.fallback is not None and embeddings is not None:
                raw[uncovered] = fallback_probs(self.fallback, embeddings[uncovered], len(self.class_names))
            else:
                raw[uncovered] = self.prior
        return self.calibrator.transform(raw), covered

    def predict(self, texts: list[str], rows: list[dict] | None = None, *, pool=None,
                embeddings: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probs, covered, L) for a batch of texts."""
        L = self.votes(texts, rows, pool=pool, embeddings=embeddings)
        probs, covered = self.probabilities(L, embeddings)
        return probs, covered, L


def label_model_from_state(state: dict | None, cardinality: int, multi_label: bool):
    """The run's fitted label model (None when the run kept no LF)."""
    if state is None:
        return None
    from lfagent.aggregate import LabelModel, MultiLabelModel

    return (MultiLabelModel if multi_label else LabelModel).from_state(state)


def predictor_from_run(model: RunModel) -> Predictor:
    spec = model.task_spec()
    names = spec.class_names
    return Predictor(lfs=list(model.lfs), class_names=names, multi_label=spec.multi_label,
                     label_model=label_model_from_state(model.label_model, len(names), spec.multi_label),
                     calibrator=model.calibrator, fallback=model.fallback if model.uses_embeddings else None,
                     prior=np.asarray(model.prior, dtype=float), run_id=model.run_id,
                     lf_set_hash=model.lf_set_hash, text_field=spec.text_field)
