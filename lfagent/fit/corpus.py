"""What a fit works on: seeds and unlabeled records with their embeddings, and their votes per LF."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from typing import TYPE_CHECKING

from lfagent.lf import ABSTAIN, LabelingFunction, text_key
from lfagent.sandbox.apply import apply_lfs, is_trusted

if TYPE_CHECKING:
    from lfagent.fit.fewshot_views import ExpertViews


@dataclass
class Corpus:
    """Seeds and unlabeled records with their embeddings (None when no embedding is used)."""

    class_names: list[str]
    multi_label: bool
    seed_texts: list[str]
    seed_y: np.ndarray
    unl_texts: list[str]
    seed_emb: np.ndarray | None = None
    unl_emb: np.ndarray | None = None
    seed_rows: list[dict] | None = None
    unl_rows: list[dict] | None = None
    # For vouching by meaning (lfagent/scoring/meaning.py): one embedding per class (name: description),
    # set only when every class has a description, and the sentence embedder for keywords.
    class_emb: np.ndarray | None = None
    embed: Callable[[list[str]], np.ndarray] | None = field(default=None, repr=False, compare=False)
    text_field: str = "text"  # the records' text field, as code LFs (and generate) see it
    embedder_name: str | None = None  # which sentence embedder made seed_emb / unl_emb
    expert_views: "ExpertViews | None" = None  # the fine-tuned expert's vectors (fit/fewshot_views.py)
    _key_rows: dict[str, list[int]] | None = field(default=None, repr=False, compare=False)
    _terms: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def k(self) -> int:
        return len(self.class_names)

    def seed_rows_of(self, keys: list[str]) -> list[int]:
        """Seed rows whose text_key is in `keys`."""
        if self._key_rows is None:
            self._key_rows = {}
            for i, text in enumerate(self.seed_texts):
                self._key_rows.setdefault(text_key(text), []).append(i)
        return [i for key in keys for i in self._key_rows.get(key, ())]

    def term_embedding(self, term: str) -> np.ndarray:
        if term not in self._terms:
            self._terms[term] = self.embed([term])[0]
        return self._terms[term]


class VoteCache:
    """Votes per LF fingerprint, so an LF shared by several folds is applied to the corpus once.

    `get_pool` returns the sandbox pool; it is called only when a code LF needs applying.
    """

    def __init__(self, corpus: Corpus, get_pool: Callable[[], object] | None = None, progress=None):
        self.corpus = corpus
        self.get_pool = get_pool
        self.progress = progress  # counts sandbox work (lfagent/counting.py)
        self._seed: dict[str, np.ndarray] = {}
        self._unl: dict[str, np.ndarray] = {}
        self.errors: dict[str, str] = {}  # LF fingerprint -> why the sandbox gave it no votes

    def matrices(self, lfs: list[LabelingFunction]) -> tuple[np.ndarray, np.ndarray]:
        missing = [lf for lf in lfs if lf.fingerprint not in self._seed]
        if missing:
            self._apply(missing)
        n_s, n_u = len(self.corpus.seed_texts), len(self.corpus.unl_texts)
        L_seed = np.column_stack([self._seed[lf.fingerprint] for lf in lfs]) if lfs else np.zeros((n_s, 0), np.int16)
        L_unl = np.column_stack([self._unl[lf.fingerprint] for lf in lfs]) if lfs else np.zeros((n_u, 0), np.int16)
        for j, lf in enumerate(lfs):
            if lf.provenance.shown:
                L_seed[self._vouching(lf, L_seed[:, j]), j] = ABSTAIN
        return L_seed, L_unl

    def _vouching(self, lf: LabelingFunction, column: np.ndarray) -> list[int]:
        """Seeds its prompt showed on which it votes right: they cannot vouch for it (it saw the answer).

        Its wrong votes there still count: a refinement told to avoid a false positive and voting it
        anyway is judged by it.
        """
        rows = np.asarray(self.corpus.seed_rows_of(lf.provenance.shown), dtype=int)
        votes = column[rows]
        y = np.asarray(self.corpus.seed_y)[rows]
        if self.corpus.multi_label:
            right = (votes >= 0) & (y[np.arange(len(rows)), np.maximum(votes, 0)] == 1)
        else:
            right = (votes >= 0) & (votes == y)
        return rows[right].tolist()

    def _apply(self, lfs: list[LabelingFunction]) -> None:
        c = self.corpus
        n_s = len(c.seed_texts)
        texts = c.seed_texts + c.unl_texts
        emb = None if c.seed_emb is None else np.vstack([c.seed_emb, c.unl_emb])
        rows = None if c.seed_rows is None else c.seed_rows + c.unl_rows
        pool = self.get_pool() if self.get_pool and not all(is_trusted(lf) for lf in lfs) else None
        outcome = apply_lfs(lfs, texts, c.class_names, rows=rows, embeddings=emb, pool=pool,
                             text_field=c.text_field, progress=self.progress)
        for j, lf in enumerate(lfs):
            self._seed[lf.fingerprint] = outcome.L[:n_s, j]
            self._unl[lf.fingerprint] = outcome.L[n_s:, j]
            if lf.name in outcome.errors:
                self.errors[lf.fingerprint] = outcome.errors[lf.name]
