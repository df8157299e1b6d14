"""The labeler: the one fitted object that turns votes and embeddings into calibrated probabilities.

A run's final fit writes it into model.json; silver.jsonl, `generate` (every engine), `Session.label_text`,
the REPL's `label` and the held-out test figures all call it, so they cannot drift apart. Per-fold models
of the cross-fitting are labelers too (without a calibrator), so the honest figures measure this code.

    labeler = load_model("runs/yt").labeler
    L = labeler.votes(texts, embeddings=emb)      # n x m, -1 = abstain
    probs, covered = labeler.proba(L, emb)        # calibrated n x k, and whether any LF voted
    labels = labeler.decide(probs)                # class names (single-label) or lists of them

A run that fine-tuned its expert (fit/fewshot_views.py) gives `proba` the expert's vectors too:
`labeler.proba(L, emb, expert_emb)`; `label(texts, embed=..., embed_expert=...)`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, PrivateAttr

from lfagent.fit.calibrator import Calibrator
from lfagent.fit.expert import ExpertState, Join, expert_proba, join_experts
from lfagent.lf import ABSTAIN, LabelingFunction
from lfagent.sandbox.apply import ApplyOutcome, apply_lfs, is_trusted


class Labeler(BaseModel):
    class_names: list[str]
    multi_label: bool
    lfs: list[LabelingFunction]
    label_model: dict | None  # LabelModel / MultiLabelModel state; None when no LF is kept
    prior: list[float]
    expert: ExpertState | None = None  # embedding expert; None when the run used no embeddings
    join: Join = "product"  # how the expert joins the label model on covered rows (fit/expert.py)
    join_weight: float = 1.0  # the label model's exponent in the product (chosen on cross-fitted seeds)
    calibrator: Calibrator | None = None  # None: raw probabilities (a cross-fitting fold's model)
    text_field: str = "text"
    embedder: str | None = None  # name of the sentence embedder the expert and embedding LFs expect
    # The expert's own encoder (fine-tuned on the seeds, fit/fewshot_views.py); None: it reads `embedder`'s.
    expert_embedder: str | None = None

    _label_model: object = PrivateAttr(default=None)

    @property
    def k(self) -> int:
        return len(self.class_names)

    @property
    def needs_embeddings(self) -> bool:
        """Vectors of `embedder`: for embedding LFs, and for an expert without an encoder of its own."""
        own = self.expert is not None and self.expert_embedder is not None
        return (self.expert is not None and not own) or any(lf.kind == "embedding" for lf in self.lfs)

    @property
    def needs_expert_embeddings(self) -> bool:
        """The expert reads vectors of its own encoder (`expert_embeddings` below)."""
        return self.expert is not None and self.expert_embedder is not None

    @property
    def code_columns(self) -> list[int]:
        """Columns of L whose LF runs in the sandbox (code, and regexes an LLM wrote)."""
        return [j for j, lf in enumerate(self.lfs) if not is_trusted(lf)]

    def fitted_label_model(self):
        """The label model rebuilt from its state (once)."""
        if self._label_model is None and self.label_model is not None:
            from lfagent.fit import LabelModel, MultiLabelModel

            self._label_model = (MultiLabelModel if self.multi_label else LabelModel).from_state(self.label_model)
        return self._label_model

    # -- votes
    def apply(self, texts: list[str], rows: list[dict] | None = None, *, embeddings: np.ndarray | None = None,
              pool=None) -> ApplyOutcome:
        """Every LF on every record: L and, per LF the sandbox could not run, why."""
        return apply_lfs(self.lfs, texts, self.class_names, rows=rows, embeddings=embeddings, pool=pool,
                         text_field=self.text_field)

    def votes(self, texts: list[str], rows: list[dict] | None = None, *, embeddings: np.ndarray | None = None,
              pool=None, code_votes: np.ndarray | None = None) -> np.ndarray:
        """L (n x m). `code_votes` (n x len(code_columns)), computed elsewhere, spares the sandbox here."""
        if code_votes is None:
            return self.apply(texts, rows, embeddings=embeddings, pool=pool).L
        code = set(self.code_columns)
        trusted = [j for j in range(len(self.lfs)) if j not in code]
        L = np.full((len(texts), len(self.lfs)), ABSTAIN, dtype=np.int16)
        if trusted:
            L[:, trusted] = apply_lfs([self.lfs[j] for j in trusted], texts, self.class_names, rows=rows,
                                      embeddings=embeddings, text_field=self.text_field).L
        if code:
            L[:, sorted(code)] = code_votes
        return L

    # -- probabilities
    def raw_proba(self, L: np.ndarray, embeddings: np.ndarray | None = None,
                  expert_embeddings: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated probabilities (n x k) and the covered flag (n,).

        The expert reads `expert_embeddings` when it has its own encoder, else `embeddings`."""
        L = np.asarray(L)
        n = L.shape[0]
        covered = (L != ABSTAIN).any(axis=1) if L.shape[1] else np.zeros(n, dtype=bool)
        model = self.fitted_label_model() if L.shape[1] else None
        prior = np.asarray(self.prior, dtype=float)
        probs = np.asarray(model.predict_proba(L), dtype=float) if model is not None else np.tile(prior, (n, 1))
        if self.needs_expert_embeddings:
            if expert_embeddings is None:
                raise ValueError(f"this labeler's expert reads {self.expert_embedder} vectors: pass expert_embeddings")
            embeddings = expert_embeddings
        if self.expert is None or embeddings is None:
            probs[~covered] = prior
            return probs, covered
        expert = expert_proba(self.expert, embeddings, self.k)
        unseen = self.expert.unseen
        reached = (L[:, :, None] == np.asarray(unseen)[None, None, :]).any(axis=1) if unseen else None
        return join_experts(probs, expert, covered, self.multi_label, self.join, unseen=unseen,
                            reached=reached, weight=self.join_weight), covered

    def proba(self, L: np.ndarray, embeddings: np.ndarray | None = None,
              expert_embeddings: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (n x k) and the covered flag (n,)."""
        raw, covered = self.raw_proba(L, embeddings, expert_embeddings)
        return (raw if self.calibrator is None else self.calibrator.transform(raw)), covered

    def decide(self, probs: np.ndarray) -> list:
        """Single-label: the top class's name per row. Multi-label: the classes whose probability reaches
        its threshold (chosen for F1 on cross-fitted seed predictions)."""
        probs = np.asarray(probs, dtype=float)
        if self.multi_label:
            hot = (self.calibrator or Calibrator(multi_label=True)).decide(probs)
            return [[name for name, on in zip(self.class_names, row) if on] for row in hot]
        return [self.class_names[int(c)] for c in probs.argmax(axis=1)] if probs.shape[1] else [None] * len(probs)

    def label(self, texts: list[str], rows: list[dict] | None = None, *,
              embed: Callable[[list[str]], np.ndarray] | None = None,
              embed_expert: Callable[[list[str]], np.ndarray] | None = None, pool=None) -> "Labelled":
        """Votes, calibrated probabilities and decisions for a batch of texts.

        `embed` encodes with the run's embedder; `embed_expert` with the expert's own (when it has one)."""
        embeddings = embed(texts) if embed is not None and self.needs_embeddings else None
        expert_embeddings = embed_expert(texts) if embed_expert is not None and self.needs_expert_embeddings else None
        L = self.votes(texts, rows, embeddings=embeddings, pool=pool)
        probs, covered = self.proba(L, embeddings, expert_embeddings)
        return Labelled(L=L, probs=probs, covered=covered, labels=self.decide(probs))


class Labelled(BaseModel, arbitrary_types_allowed=True):
    L: np.ndarray
    probs: np.ndarray
    covered: np.ndarray
    labels: list
