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

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from lfagent.fit.corpus import Corpus, VoteCache
from lfagent.fit.expert import Join, fit_expert
from lfagent.fit.labeler import Labeler
from lfagent.fit.label_model import LabelModel
from lfagent.fit.multilabel import MultiLabelModel
from lfagent.lf import LabelingFunction
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
    combine: Join = "product"
    fallback_c: float = 10.0  # inverse L2 strength of the embedding classifier

@dataclass
class FittedModel:
    """What one fit learned: its labeler (kept LFs, label model, embedding expert) and why LFs were dropped."""

    labeler: Labeler
    dropped: dict[str, str] = field(default_factory=dict)
    candidates: list[LabelingFunction] = field(default_factory=list)
    vouched: set[str] = field(default_factory=set)  # LFs the meaning check let past too few seed votes
    label_model_name: str = "none"

    @property
    def lfs(self) -> list[LabelingFunction]:
        return self.labeler.lfs

    def reason(self, name: str) -> str | None:
        """Why this fit dropped the LF, or why it kept one the seeds alone could not judge."""
        if name in self.vouched and name not in self.dropped:
            return ("vouched for by meaning: its seed votes are too few or too thin to decide; its keyword and "
                    "matches mean its class")
        return self.dropped.get(name)

    def predict(self, L: np.ndarray, emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated probabilities (n x k) and the covered flag (n,)."""
        return self.labeler.raw_proba(L, emb)


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
    expert = None
    if config.fallback == "embedding" and corpus.seed_emb is not None:
        expert = fit_expert(corpus.seed_emb[train], y, corpus.multi_label, config.seed, c=config.fallback_c,
                            prior=prior)
    labeler = Labeler(class_names=corpus.class_names, multi_label=corpus.multi_label, lfs=kept,
                      label_model=model.to_state() if model is not None else None,
                      prior=[float(p) for p in prior], expert=expert, join=config.combine,
                      text_field=corpus.text_field, embedder=corpus.embedder_name)
    name = getattr(model, "chosen_method_", None) or getattr(model, "method", "none")
    return FittedModel(labeler=labeler, dropped=dropped, candidates=candidates,
                       vouched=set(selection.on_meaning), label_model_name=str(name))


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
