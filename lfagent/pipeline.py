"""The core path: candidates -> votes -> selection -> label model -> calibration -> silver probabilities.

Honest use of seeds (cross-fitting):
1. Seeds are split into K folds. For each fold, everything that learns from seeds (mining, LF selection,
   label-model choice, the embedding fallback) sees only the other folds; the held-out fold is then
   predicted. This gives one honest, uncalibrated prediction per seed.
2. The calibrator applied to the final model is fitted on those held-out predictions.
3. Reported calibrated figures (accuracy, ECE) use, for each fold, a calibrator fitted on the *other*
   folds' held-out predictions. No reported figure is fitted on the seeds it is measured on.
4. An LLM-written LF's right votes on the seeds its prompt showed do not count (VoteCache.matrices):
   the LLM saw those answers, so they cannot vouch for it; its wrong votes there still count.
The final model is then refit on all seeds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from lfagent.aggregate import LabelModel, MultiLabelModel
from lfagent.apply import apply_lfs, is_trusted
from lfagent.lf import ABSTAIN, LabelingFunction, text_key
from lfagent.propose.llm_concepts import refit_concept_lf
from lfagent.propose.mined import mine_embedding_lfs, mine_ngram_lfs
from lfagent.scoring import select_lfs
from lfagent.scoring.meaning import vouched_by_meaning


class PipelineConfig(BaseModel):
    folds: int = 5
    seed: int = 0
    mine_ngrams: bool = True
    mine_embeddings: bool = True
    max_ngram: int = 3
    mine_shapes: bool = True  # token shapes (five-digit numbers, "150p") as regex LFs, see propose/mined.py
    min_votes: int = 3
    label_model: str = "auto"  # auto | majority | dawid_skene | metal (Snorkel's estimator)
    fallback: str = "embedding"  # embedding (logistic regression on seed embeddings) | prior
    # How the embedding classifier joins the label model on covered records: "product" treats the two as
    # independent experts (p ~ p_lm * p_emb / prior); "none" uses it only where no LF votes.
    combine: str = "product"
    fallback_c: float = 10.0  # inverse L2 strength of the embedding classifier


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


@dataclass
class FittedModel:
    """What one fit learned: the kept LFs, the label model and the fallback for uncovered records."""

    lfs: list[LabelingFunction]
    label_model: object
    fallback: object | None
    prior: np.ndarray
    multi_label: bool
    dropped: dict[str, str] = field(default_factory=dict)
    candidates: list[LabelingFunction] = field(default_factory=list)
    vouched: set[str] = field(default_factory=set)  # LFs the meaning check let past too few seed votes

    combine: str = "product"

    def reason(self, name: str) -> str | None:
        """Why this fit dropped the LF, or why it kept one the seeds alone could not judge."""
        if name in self.vouched and name not in self.dropped:
            return ("vouched for by meaning: its seed votes are too few or too thin to decide; its keyword and "
                    "matches mean its class")
        return self.dropped.get(name)

    def predict(self, L: np.ndarray, emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated probabilities (n x k) and the covered flag (n,)."""
        n = L.shape[0]
        covered = (L != ABSTAIN).any(axis=1) if L.shape[1] else np.zeros(n, dtype=bool)
        probs = self.label_model.predict_proba(L).astype(float) if L.shape[1] else np.tile(self.prior, (n, 1))
        if self.fallback is None or emb is None:
            probs[~covered] = self.prior
            return probs, covered
        expert = fallback_predict(self.fallback, emb, self.multi_label, len(self.prior))
        return combine_experts(probs, expert, covered, self.prior, self.multi_label, self.combine), covered


ProgressFn = Callable[[str], None]


def combine_experts(lm: np.ndarray, emb: np.ndarray, covered: np.ndarray, prior: np.ndarray, multi_label: bool,
                    how: str) -> np.ndarray:
    """Covered rows: label model and embedding classifier as independent experts; others: the classifier.

    The classifier is trained with balanced class weights, so its output is a likelihood with a flat
    prior: the product p_lm * p_emb then counts the label model's class prior once.
    """
    eps = 1e-6
    out = emb.copy()
    if how == "product":
        if multi_label:  # per class, two-way products of independent binary experts
            pos = lm * emb
            neg = (1 - lm) * (1 - emb)
            joint = pos / np.maximum(pos + neg, eps)
        else:
            joint = np.clip(lm, eps, 1) * np.clip(emb, eps, 1)
            joint /= joint.sum(axis=1, keepdims=True)
        out[covered] = joint[covered]
    else:
        out[covered] = lm[covered]
    return out


def candidate_lfs(corpus: Corpus, train: np.ndarray, config: PipelineConfig,
                  extra: list[LabelingFunction]) -> list[LabelingFunction]:
    """Mined LFs from the training seeds, plus LFs from elsewhere (LLM, user)."""
    texts = [corpus.seed_texts[i] for i in train]
    y = corpus.seed_y[train]
    lfs: list[LabelingFunction] = []
    if config.mine_ngrams:
        lfs += mine_ngram_lfs(texts, y, corpus.class_names, unlabeled_texts=corpus.unl_texts,
                              max_n=config.max_ngram, multi_label=corpus.multi_label, shapes=config.mine_shapes)
    if config.mine_embeddings and corpus.seed_emb is not None:
        lfs += mine_embedding_lfs(corpus.seed_emb[train], y, corpus.class_names, multi_label=corpus.multi_label)
    # An LF from outside with a miner's name is the user's edit of it: it replaces the mined one.
    replaced = {lf.name for lf in extra}
    return [lf for lf in lfs if lf.name not in replaced] + _refit_concepts(extra, corpus, train)


def _refit_concepts(extra: list[LabelingFunction], corpus: Corpus, train: np.ndarray) -> list[LabelingFunction]:
    """LLM concept LFs get their thresholds from the training seeds of this fit (honest cross-fitting)."""
    if corpus.seed_emb is None or len(train) == len(corpus.seed_y):
        return list(extra)
    out = []
    for lf in extra:
        if lf.provenance.source == "llm:concepts" and lf.kind == "embedding" and lf.label in corpus.class_names:
            c = corpus.class_names.index(lf.label)
            y = corpus.seed_y[train]
            members = np.asarray(y, bool)[:, c] if corpus.multi_label else np.asarray(y) == c
            keep = ~np.isin(train, corpus.seed_rows_of(lf.provenance.shown))  # not the seeds it was made from
            lf = refit_concept_lf(lf, corpus.seed_emb[train][keep], members[keep])
            if lf is None:
                continue
        out.append(lf)
    return out


def fit_once(corpus: Corpus, train: np.ndarray, config: PipelineConfig, *,
             extra: list[LabelingFunction] = (), pins: dict[str, str] | None = None,
             votes: "VoteCache | None" = None) -> FittedModel:
    """Mine, select, and fit on the seeds `train` (indices) plus the whole unlabeled set.

    `pins` maps LF names to 'keep' (kept whatever scoring says) or 'drop' (never a candidate).
    """
    pins = pins or {}
    candidates = [lf for lf in candidate_lfs(corpus, train, config, list(extra)) if pins.get(lf.name) != "drop"]
    votes = votes or VoteCache(corpus)
    L_seed, L_unl = votes.matrices(candidates)
    y = corpus.seed_y[train]
    prior = class_prior(y, corpus.k, corpus.multi_label)
    selection = select_lfs(L_seed[train], y, L_unl, cardinality=corpus.k, names=[lf.name for lf in candidates],
                           lf_labels=[_label_index(lf, corpus.class_names) for lf in candidates],
                           min_votes=config.min_votes, vouched=vouched_lfs(candidates, L_unl, corpus, prior),
                           keywords=_named(candidates, "llm:keywords"), incremental=_named(candidates, "llm:"),
                           rules=_named(candidates, ("mined:ngram", "mined:shape")))
    dropped = dict(selection.dropped)
    failed = {lf.name: votes.errors[lf.fingerprint] for lf in candidates if lf.fingerprint in votes.errors}
    dropped.update({name: f"sandbox: {why}" for name, why in failed.items()})
    chosen = set(selection.kept) | {name for name, pin in pins.items() if pin == "keep"}
    keep = [j for j, lf in enumerate(candidates) if lf.name in chosen and lf.name not in failed]
    kept = [candidates[j] for j in keep]
    model = fit_label_model(L_unl[:, keep], L_seed[train][:, keep], y, corpus, config) if keep else None
    fallback = None
    if config.fallback == "embedding" and corpus.seed_emb is not None:
        fallback = fit_fallback(corpus.seed_emb[train], y, corpus.multi_label, config.seed, c=config.fallback_c)
    return FittedModel(lfs=kept, label_model=model, fallback=fallback, prior=prior,
                       multi_label=corpus.multi_label, dropped=dropped, candidates=candidates,
                       combine=config.combine, vouched=set(selection.on_meaning))


def _named(lfs: list[LabelingFunction], source: str | tuple[str, ...]) -> set[str]:
    """Names of the LFs whose provenance starts with `source` (e.g. "llm:", or a tuple of prefixes)."""
    return {lf.name for lf in lfs if lf.provenance.source.startswith(source)}


def vouched_lfs(candidates: list[LabelingFunction], L_unl: np.ndarray, corpus: Corpus,
                prior: np.ndarray) -> set[str]:
    """LLM keyword LFs whose keywords and matched records mean their class (see scoring/meaning.py)."""
    if corpus.class_emb is None or corpus.embed is None or corpus.unl_emb is None or corpus.multi_label:
        return set()
    vouched = set()
    for j, lf in enumerate(candidates):
        if lf.provenance.source != "llm:keywords" or lf.label not in corpus.class_names:
            continue
        c = corpus.class_names.index(lf.label)
        matched = corpus.unl_emb[L_unl[:, j] == c]
        if vouched_by_meaning(corpus.term_embedding(" ".join(lf.keywords)), matched, corpus.class_emb, c,
                              float(prior[c]), len(L_unl)):
            vouched.add(lf.name)
    return vouched


def fit_label_model(L_unl, L_dev, y_dev, corpus: Corpus, config: PipelineConfig):
    if corpus.multi_label:
        return MultiLabelModel(cardinality=corpus.k).fit(L_unl, seed=config.seed)
    model = LabelModel(cardinality=corpus.k, method=config.label_model)
    return model.fit(L_unl, seed=config.seed, L_dev=L_dev, y_dev=y_dev)


def _label_index(lf: LabelingFunction, class_names: list[str]) -> int:
    return class_names.index(lf.label) if lf.label in class_names else -1


def class_prior(y: np.ndarray, k: int, multi_label: bool) -> np.ndarray:
    if multi_label:
        return (np.asarray(y, dtype=float).sum(axis=0) + 0.5) / (len(y) + 1.0)
    counts = np.bincount(np.asarray(y, dtype=int), minlength=k) + 1.0
    return counts / counts.sum()


def fit_fallback(emb: np.ndarray, y: np.ndarray, multi_label: bool, seed: int, c: float = 10.0):
    """Logistic regression on seed embeddings: the fallback for records no LF covers."""
    from sklearn.linear_model import LogisticRegression

    if multi_label:
        models = []
        for k in range(y.shape[1]):
            column = y[:, k]
            models.append(LogisticRegression(C=c, max_iter=1000, random_state=seed, class_weight="balanced").fit(emb, column)
                          if 0 < column.sum() < len(column) else float(column.mean()))
        return models
    if len(np.unique(y)) < 2:
        return None
    # Balanced weights: the classifier then scores p(x | y) up to a constant, a likelihood that joins the
    # label model's posterior without counting the class prior twice (see combine_experts).
    return LogisticRegression(C=c, max_iter=1000, random_state=seed, class_weight="balanced").fit(emb, y)


def fallback_predict(model, emb: np.ndarray, multi_label: bool, k: int) -> np.ndarray:
    if multi_label:
        return np.column_stack([m.predict_proba(emb)[:, 1] if not isinstance(m, float) else np.full(len(emb), m)
                                for m in model])
    probs = np.zeros((len(emb), k))
    probs[:, model.classes_] = model.predict_proba(emb)
    return probs


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
        outcome = apply_lfs(lfs, texts, c.class_names, rows=rows, embeddings=emb, pool=pool, progress=self.progress)
        for j, lf in enumerate(lfs):
            self._seed[lf.fingerprint] = outcome.L[:n_s, j]
            self._unl[lf.fingerprint] = outcome.L[n_s:, j]
            if lf.name in outcome.errors:
                self.errors[lf.fingerprint] = outcome.errors[lf.name]


def fold_indices(y: np.ndarray, folds: int, seed: int, multi_label: bool) -> list[np.ndarray]:
    """Stratified folds (by the first label for multi-label), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    strata = np.argmax(y, axis=1) if multi_label else np.asarray(y)
    assignment = np.empty(len(strata), dtype=int)
    offset = 0
    for value in np.unique(strata):
        members = rng.permutation(np.nonzero(strata == value)[0])
        assignment[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return [np.nonzero(assignment == f)[0] for f in range(folds)]
