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
5. The LLM's LFs are judged inside each fold (judge_by_agreement): against the fold's model fitted without
   them, on the unlabeled records. One that disagrees is dropped; one that agrees may stand in for seed
   votes too few to decide, as the meaning check lets a keyword do. No choice is made on all the seeds
   outside the folds (the round loop no longer screens), so the accuracy reported is not the best of many
   noisy comparisons.
The final model is then refit on all seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from lfagent.fit.corpus import Corpus, VoteCache
from lfagent.fit.expert import Join, confidence_matched, fit_expert
from lfagent.fit.labeler import Labeler
from lfagent.fit.label_model import LabelModel
from lfagent.fit.multilabel import MultiLabelModel
from lfagent.lf import ABSTAIN, ANNOTATION_SOURCE, LabelingFunction
from lfagent.propose.llm_concepts import refit_concept_lf
from lfagent.propose.mined import mine_embedding_lfs, mine_ngram_lfs
from lfagent.scoring import select_lfs
from lfagent.scoring.agreement import Agreement, agreement_with_model
from lfagent.scoring.meaning import vouched_by_meaning


HELDOUT_ENCODER = "heldout-group-encoder"  # what a cross-fitting fold's expert reads (fit/fewshot_views.py)

# LLM keyword LFs: copied from a seed text (llm:keywords) or recalled (llm:recall). Both are held to the bar a
# mined keyword must reach and may be vouched for by meaning.
KEYWORD_SOURCES = ("llm:keywords", "llm:recall")


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
    # The label model's exponent in that product; None: chosen from JOIN_WEIGHTS by the held-out log-loss of
    # the cross-fitted seeds (fit/crossfit.py), since mined LFs next to a fine-tuned expert are often weaker
    # than their confidence says.
    join_weight: float | None = None
    fallback_c: float = 10.0  # inverse L2 strength of the embedding classifier
    # What the embedding expert reads: "finetuned" = MiniLM fine-tuned on the seeds with SetFit's recipe
    # (fit/fewshot_views.py; needs setfit from the embed extra, else frozen), "frozen" = MiniLM as shipped.
    # Default: $LFAGENT_EXPERT, else "finetuned".
    expert: Literal["finetuned", "frozen"] = Field(default_factory=lambda: default_expert())
    # Pair iterations (pairs = 2 x this x seeds, 16 per optimiser step). The final encoder gets SetFit's 20;
    # the two group encoders, which only make the held-out vectors, get 10: together they cost half the
    # final one (100 seeds: 250 + 125 steps). With 10 for the final one too, sms lost 0.05 F1 on a tuning draw.
    fewshot_iterations: int = 20
    fewshot_group_iterations: int = 10
    fewshot_max_steps: int | None = 500  # caps each fine-tune's steps, so many seeds cannot run for hours
    # "auto": bfloat16 mixed precision where the CPU has it natively (fit/fewshot.resolve_precision), else fp32.
    # Default: $LFAGENT_PRECISION, else "auto".
    fewshot_precision: Literal["auto", "fp32", "bf16"] = Field(default_factory=lambda: default_precision())

    def fine_tune_options(self) -> dict:
        """What fit/fewshot_views.build_expert_views takes from the config (the views' cache key includes it)."""
        from lfagent.fit.fewshot import resolve_precision

        options = {"pair_iterations": self.fewshot_iterations, "max_steps": self.fewshot_max_steps}
        if resolve_precision(self.fewshot_precision) == "bf16":  # fp32 keeps the cache keys made before bf16
            options["precision"] = "bf16"
        return {"options": options, "group_iterations": self.fewshot_group_iterations, "seed": self.seed}

def default_expert() -> str:
    return _env_choice("LFAGENT_EXPERT", ("finetuned", "frozen"))


def default_precision() -> str:
    return _env_choice("LFAGENT_PRECISION", ("auto", "fp32", "bf16"))


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """$name if set (blank: unset), else the first choice; any other value is an InputError naming it."""
    import os

    from lfagent.errors import InputError

    value = os.environ.get(name, choices[0]).strip() or choices[0]
    if value not in choices:
        raise InputError(f"${name} is {value!r}; use {', '.join(choices[:-1])} or {choices[-1]}")
    return value


@dataclass
class FittedModel:
    """What one fit learned: its labeler (kept LFs, label model, embedding expert) and why LFs were dropped."""

    labeler: Labeler
    dropped: dict[str, str] = field(default_factory=dict)
    candidates: list[LabelingFunction] = field(default_factory=list)
    vouched: set[str] = field(default_factory=set)  # LFs the meaning check let past too few seed votes
    agreed: dict[str, Agreement] = field(default_factory=dict)  # LLM LFs let past too few seed votes by agreement
    label_model_name: str = "none"

    @property
    def lfs(self) -> list[LabelingFunction]:
        return self.labeler.lfs

    def reason(self, name: str) -> str | None:
        """Why this fit dropped the LF, or why it kept one the seeds alone could not judge."""
        if name in self.dropped:
            return self.dropped[name]
        if name in self.agreed:
            return ("kept on its unlabeled votes: its seed votes are too few or too thin to decide; it "
                    + self.agreed[name].reason())
        if name in self.vouched:
            return ("vouched for by meaning: its seed votes are too few or too thin to decide; its keyword and "
                    "matches mean its class")
        return None

    def predict(self, L: np.ndarray, emb: np.ndarray | None,
                expert_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated probabilities (n x k) and the covered flag (n,)."""
        return self.labeler.raw_proba(L, emb, expert_emb)


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
             votes: "VoteCache | None" = None, expert_emb: np.ndarray | None = None,
             expert_embedder: str | None = None, expert_unl_emb: np.ndarray | None = None) -> FittedModel:
    """Mine, select, and fit on the seeds `train` (indices) plus the whole unlabeled set.

    `pins` maps LF names to 'keep' (kept whatever scoring says) or 'drop' (never a candidate). The LLM's
    proposals are judged here, inside the fold, on all the evidence (see `judge_by_agreement`).
    `expert_emb`: every seed's vector from the expert's own encoder (named `expert_embedder`, or None within
    cross-fitting), read instead of the corpus embeddings by the labeler's expert. `expert_unl_emb`: the
    unlabeled records in that encoder's space; given, the records the kept LLM annotation LFs label train the
    expert beside the seeds (`annotated_rows`).
    """
    pins = pins or {}
    candidates = [lf for lf in candidate_lfs(corpus, train, config, list(extra)) if pins.get(lf.name) != "drop"]
    votes = votes or VoteCache(corpus)
    L_seed, L_unl = votes.matrices(candidates)
    y = corpus.seed_y[train]
    prior = class_prior(y, corpus.k, corpus.multi_label)
    failed = {lf.name: votes.errors[lf.fingerprint] for lf in candidates if lf.fingerprint in votes.errors}
    # The agreement judge's expert reads the unlabeled records in its own space. The final fit of a fine-tuned
    # expert has them from the final encoder, so it judges with that expert: an LF that agrees with the frozen
    # model's mistakes (a liar's, say) does not agree with it. Within cross-fitting the unlabeled records have
    # no vectors from an encoder blind to the fold, so the frozen-MiniLM expert judges there.
    final_tuned = expert_emb is not None and expert_unl_emb is not None
    judge = None
    if config.fallback == "embedding" and corpus.seed_emb is not None:
        judge = fit_expert((expert_emb if final_tuned else corpus.seed_emb)[train], y, corpus.multi_label,
                           config.seed, c=config.fallback_c, prior=prior)
    agreement = judge_by_agreement(candidates, L_seed[train], L_unl, y, corpus, config, pins=pins, failed=failed,
                                   expert=judge, prior=prior, unl_emb=expert_unl_emb if final_tuned else None)
    disagree = {name for name, judged in agreement.items() if judged.verdict == "disagrees"}
    agreed = {name for name, judged in agreement.items() if judged.verdict == "agrees"}
    columns = [j for j, lf in enumerate(candidates) if lf.name not in disagree]
    pool = [candidates[j] for j in columns]
    meaning = vouched_lfs(pool, L_unl[:, columns], corpus, prior)
    selection = _select(pool, L_seed[train][:, columns], y, L_unl[:, columns], corpus, config,
                        vouched=meaning | agreed)
    dropped = {name: agreement[name].reason() for name in disagree}
    dropped.update(selection.dropped)
    dropped.update({name: f"sandbox: {why}" for name, why in failed.items()})
    chosen = set(selection.kept) | {name for name, pin in pins.items() if pin == "keep"}
    keep = [j for j, lf in enumerate(candidates) if lf.name in chosen and lf.name not in failed]
    kept = [candidates[j] for j in keep]
    model = fit_label_model(L_unl[:, keep], L_seed[train][:, keep], y, corpus, config, kept) if keep else None
    expert = judge
    if judge is not None and expert_emb is not None:  # the fine-tuned expert (fit/fewshot_views.py)
        extra = annotated_rows(kept, L_seed[train][:, keep], y, L_unl[:, keep], corpus.k,
                               corpus.multi_label) if final_tuned else None
        if extra is not None:
            rows, labels, label_weight = extra
            seed_weight = np.ones((len(y), corpus.k)) if corpus.multi_label else np.ones(len(y))
            expert = fit_expert(np.vstack([expert_emb[train], expert_unl_emb[rows]]), np.concatenate([y, labels]),
                                corpus.multi_label, config.seed, c=config.fallback_c, prior=prior,
                                sample_weight=np.concatenate([seed_weight, label_weight]))
            expert = confidence_matched(expert, judge, expert_unl_emb, corpus.k)
        elif not final_tuned:  # a cross-fitting fold: the judge read the frozen vectors, the expert reads these
            expert = fit_expert(expert_emb[train], y, corpus.multi_label, config.seed, c=config.fallback_c,
                                prior=prior)
            # ... and so must its predictions: the labeler passes `expert_embeddings` only to an expert that
            # names its own encoder (a fold's is never saved, so the name only marks it).
            expert_embedder = expert_embedder or HELDOUT_ENCODER
    labeler = _labeler(corpus, kept, model, prior, expert, config, expert_embedder=expert_embedder)
    name = getattr(model, "chosen_method_", None) or getattr(model, "method", "none")
    on_meaning = set(selection.on_meaning)
    return FittedModel(labeler=labeler, dropped=dropped, candidates=candidates, vouched=on_meaning & meaning,
                       agreed={n: agreement[n] for n in on_meaning & agreed}, label_model_name=str(name))


def annotated_rows(lfs: list[LabelingFunction], L_seed: np.ndarray, y: np.ndarray, L_unl: np.ndarray, k: int,
                   multi_label: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(unlabeled rows, their labels, sample weights) from the LLM's record labels among `lfs` (kept LFs), for
    the expert to learn from beside the seeds; None when no annotation LF was kept.

    A label weighs what the LLM's labels of the seeds say it is worth: the share of the seeds it gave that
    class that have it ((right + 1) / (given + 2)), so a class it hands out too freely (a model that calls
    one ham message in seven spam) counts for less than one it gives with care. Multi-label, per class: how
    often its set agreed with the seed's on that class, over the seeds it labelled; a class whose LF was not
    kept weighs nothing (the LLM's word on it was found wanting).
    """
    columns = [j for j, lf in enumerate(lfs) if lf.kind == "lookup" and lf.provenance.source == ANNOTATION_SOURCE]
    if not columns:
        return None
    on_unl = (L_unl[:, columns] != ABSTAIN).any(axis=1)
    on_seed = (L_seed[:, columns] != ABSTAIN).any(axis=1)
    rows = np.flatnonzero(on_unl)
    if not len(rows) or not on_seed.any():
        return None
    if not multi_label:
        [j] = columns
        votes, truth = L_seed[on_seed, j], np.asarray(y)[on_seed]
        given = np.bincount(votes, minlength=k)
        right = np.bincount(votes[votes == truth], minlength=k)
        labels = L_unl[rows, j].astype(int)
        return rows, labels, ((right + 1.0) / (given + 2.0))[labels]
    said = np.zeros((len(L_seed), k), bool)
    labels = np.zeros((len(rows), k), int)
    kept_class = np.zeros(k, bool)
    for j in columns:
        said |= L_seed[:, j][:, None] == np.arange(k)
        labels |= (L_unl[rows, j][:, None] == np.arange(k)).astype(int)
        kept_class[np.unique(L_unl[L_unl[:, j] != ABSTAIN, j])] = True
    agree = (said[on_seed] == np.asarray(y, bool)[on_seed]).sum(axis=0)
    worth = np.where(kept_class, (agree + 1.0) / (on_seed.sum() + 2.0), 0.0)
    return rows, labels, np.tile(worth, (len(rows), 1))


def _select(candidates: list[LabelingFunction], L_seed: np.ndarray, y: np.ndarray, L_unl: np.ndarray,
            corpus: Corpus, config: PipelineConfig, *, vouched: set[str] = frozenset()):
    return select_lfs(L_seed, y, L_unl, cardinality=corpus.k, names=[lf.name for lf in candidates],
                      lf_labels=[_label_index(lf, corpus.class_names) for lf in candidates],
                      min_votes=config.min_votes, vouched=vouched,
                      keywords=_named(candidates, KEYWORD_SOURCES), incremental=_named(candidates, "llm:"),
                      rules=_named(candidates, ("mined:ngram", "mined:shape")))


def _labeler(corpus: Corpus, kept: list[LabelingFunction], model, prior: np.ndarray, expert, config, *,
             expert_embedder: str | None = None) -> Labeler:
    return Labeler(class_names=corpus.class_names, multi_label=corpus.multi_label, lfs=kept,
                   label_model=model.to_state() if model is not None else None,
                   prior=[float(p) for p in prior], expert=expert, join=config.combine,
                   text_field=corpus.text_field, embedder=corpus.embedder_name,
                   expert_embedder=expert_embedder if expert is not None else None)


def judge_by_agreement(candidates: list[LabelingFunction], L_seed: np.ndarray, L_unl: np.ndarray, y: np.ndarray,
                       corpus: Corpus, config: PipelineConfig, *, pins: dict[str, str], failed: dict[str, str],
                       expert, prior: np.ndarray, unl_emb: np.ndarray | None = None) -> dict:
    """The LLM's LFs (not its record labels, not pinned) against the current model on the unlabeled records.

    The current model is this fold's fit without any LLM LF: selection over the other candidates on the
    fold's training seeds, their label model, joined with the fold's embedding expert. Returns name ->
    Agreement (scoring/agreement.py); empty when there is nothing to judge, and for multi-label tasks.
    `L_seed` holds the fold's training seeds' rows only; `unl_emb`: the unlabeled records in `expert`'s space
    (default: the corpus embeddings).
    """
    judged = [j for j, lf in enumerate(candidates) if lf.provenance.source.startswith("llm:")
              and lf.kind != "lookup" and pins.get(lf.name) != "keep" and lf.name not in failed]
    if not judged or corpus.multi_label:
        return {}
    base = [j for j, lf in enumerate(candidates) if not lf.provenance.source.startswith("llm")]
    pool = [candidates[j] for j in base]
    selection = _select(pool, L_seed[:, base], y, L_unl[:, base], corpus, config,
                        vouched=vouched_lfs(pool, L_unl[:, base], corpus, prior))
    chosen = set(selection.kept) | {name for name, pin in pins.items() if pin == "keep"}
    keep = [j for j in base if candidates[j].name in chosen and candidates[j].name not in failed]
    model = fit_label_model(L_unl[:, keep], L_seed[:, keep], y, corpus, config,
                            [candidates[j] for j in keep]) if keep else None
    current = _labeler(corpus, [candidates[j] for j in keep], model, prior, expert, config)
    probs, _ = current.raw_proba(L_unl[:, keep], corpus.unl_emb if unl_emb is None else unl_emb)
    return agreement_with_model(L_unl[:, judged], probs, [candidates[j].name for j in judged],
                                keywords=_named(candidates, KEYWORD_SOURCES))


def _named(lfs: list[LabelingFunction], source: str | tuple[str, ...]) -> set[str]:
    """Names of the LFs whose provenance starts with `source` (e.g. "llm:", or a tuple of prefixes)."""
    return {lf.name for lf in lfs if lf.provenance.source.startswith(source)}


def vouched_lfs(candidates: list[LabelingFunction], L_unl: np.ndarray, corpus: Corpus,
                prior: np.ndarray) -> set[str]:
    """LLM keyword LFs (copied or recalled) whose keywords and matched records mean their class (see
    scoring/meaning.py)."""
    if corpus.class_emb is None or corpus.embed is None or corpus.unl_emb is None or corpus.multi_label:
        return set()
    vouched = set()
    for j, lf in enumerate(candidates):
        if lf.provenance.source not in KEYWORD_SOURCES or lf.kind != "keywords" or lf.label not in corpus.class_names:
            continue
        c = corpus.class_names.index(lf.label)
        matched = corpus.unl_emb[L_unl[:, j] == c]
        if vouched_by_meaning(corpus.term_embedding(" ".join(lf.keywords)), matched, corpus.class_emb, c,
                              float(prior[c]), len(L_unl)):
            vouched.add(lf.name)
    return vouched


def fit_label_model(L_unl, L_dev, y_dev, corpus: Corpus, config: PipelineConfig, lfs: list[LabelingFunction]):
    """The label model over the columns of `lfs`. Multi-label: the LLM's per-class record-label LFs are one
    source's label sets, whose silence on a record it labelled is a vote against, and whose rates are measured
    on the seeds (`L_dev`: the fold's training seeds only), the other LFs' against it (multilabel.py)."""
    if corpus.multi_label:
        label_sets = {j: corpus.class_names.index(lf.label) for j, lf in enumerate(lfs)
                      if lf.kind == "lookup" and lf.provenance.source == ANNOTATION_SOURCE and lf.label}
        return MultiLabelModel(cardinality=corpus.k, label_sets=label_sets).fit(L_unl, seed=config.seed,
                                                                                L_known=L_dev, Y_known=y_dev)
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
