"""Cross-fitted evaluation, calibration and the final fit (see lfagent/fit/fold_fit.py for the protocol).

The result's `labeler` (the final fit's labeler with its calibrator) is what the run persists and what
every face calls; the run's own silver probabilities are computed by it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel

from lfagent.fit import expected_calibration_error, multilabel_expected_calibration_error
from lfagent.fit.calibrator import even_odds_thresholds, f1_thresholds, fit_calibrator
from lfagent.fit.corpus import Corpus, VoteCache
from lfagent.fit.expert import JOIN_WEIGHTS, choose_join_weight, fit_expert
from lfagent.fit.fold_fit import FittedModel, PipelineConfig, class_prior, fit_once, fold_indices
from lfagent.fit.labeler import Labeler
from lfagent.counting import counter
from lfagent.lf import ANNOTATION_SOURCE, LabelingFunction
from lfagent.scoring import wilson_interval


class Metrics(BaseModel):
    """Figures measured on seeds that the model producing them never saw (cross-fitted)."""

    seed_accuracy: float  # single-label: accuracy; multi-label: micro F1
    seed_accuracy_low: float
    seed_accuracy_high: float
    seed_macro_f1: float
    seed_ece: float
    seed_ece_uncalibrated: float
    seed_covered_fraction: float
    unlabeled_coverage: float
    n_seeds: int
    n_unlabeled: int
    n_candidates: int
    n_kept: int
    folds: int
    label_model: str
    join_weight: float = 1.0  # the label model's exponent in its product with the expert (fit/expert.py)
    extra: dict = {}


@dataclass
class PipelineResult:
    final: FittedModel
    labeler: Labeler  # the final fit's, calibrated: what model.json stores
    metrics: Metrics
    probs: np.ndarray  # calibrated, unlabeled x k
    covered: np.ndarray
    heldout_probs: np.ndarray  # calibrated, cross-fitted, seeds x k
    votes: VoteCache
    fold_kept: list[list[str]] = field(default_factory=list)


def run_pipeline(corpus: Corpus, config: PipelineConfig, *, extra: list[LabelingFunction] = (),
                 pins: dict[str, str] | None = None, progress=None,
                 votes: VoteCache | None = None) -> PipelineResult:
    votes = votes or VoteCache(corpus)
    views = corpus.expert_views if corpus.seed_emb is not None else None
    n = len(corpus.seed_y)
    folds = fold_indices(corpus.seed_y, config.folds, config.seed, corpus.multi_label)
    weights = join_weights(config, corpus)
    by_weight = {w: np.zeros((n, corpus.k)) for w in weights}
    # The weight is chosen for the final expert, far stronger than the held-out ones (fit/expert.py
    # `choose_join_weight`): it is chosen on held-out predictions with a stand-in as strong as the final one.
    stand_in = {w: np.zeros((n, corpus.k)) for w in weights} if views is not None and len(weights) > 1 else None
    heldout_covered = np.zeros(n, dtype=bool)
    fold_kept = []
    # Repeated for every refit of every round: a bar while it runs, no line left behind.
    fits = counter(progress, "mining and fitting", len(folds) + 1,
                   unit="fits", summary=False)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        expert_emb = None if views is None else views.fold_emb(f)
        model = fit_once(corpus, train, config, extra=extra, pins=pins, votes=votes, expert_emb=expert_emb)
        L_seed, L_unl = votes.matrices(model.lfs)
        emb = None if corpus.seed_emb is None else corpus.seed_emb[test]
        seen = seen_as_unlabeled(L_seed[test], L_unl, model.lfs, seed=config.seed + f)
        for w in weights:
            by_weight[w][test], heldout_covered[test] = model.labeler.model_copy(
                update={"join_weight": w}).raw_proba(seen, emb, None if expert_emb is None else expert_emb[test])
        if stand_in is not None:
            final_like = _final_like(model.labeler, corpus, train, config, views.seed_emb)
            for w in weights:
                stand_in[w][test], _ = final_like.model_copy(update={"join_weight": w}).raw_proba(
                    seen, emb, views.seed_emb[test])
        fold_kept.append([lf.name for lf in model.lfs])
        fits.advance()
    raw_heldout, join_weight = _joined(by_weight, heldout_covered, corpus, folds, stand_in)
    heldout, fold_calibrators = _cross_calibrated(raw_heldout, corpus, folds)
    # Multi-label cut-offs: F1-tuned on the held-out seeds, unless the expert is fine-tuned (even_odds_thresholds).
    even_odds = views is not None
    heldout_decisions = (_cross_decided(heldout, corpus, folds, fold_calibrators if even_odds else None)
                         if corpus.multi_label else None)
    final = fit_once(corpus, np.arange(n), config, extra=extra, pins=pins, votes=votes,
                     expert_emb=None if views is None else views.seed_emb,
                     expert_embedder=None if views is None else views.name,
                     # The LLM's record labels train the final expert only: the cross-fitted ones read the
                     # group encoders' vectors, which the unlabeled records are never given (fewshot_views.py).
                     expert_unl_emb=None if views is None else views.unl_emb)
    fits.advance()
    fits.close()
    calibrator = fit_calibrator(raw_heldout, corpus.seed_y, multi_label=corpus.multi_label)
    if corpus.multi_label:
        calibrator.thresholds = (even_odds_thresholds(calibrator) if even_odds
                                 else f1_thresholds(heldout, corpus.seed_y))
    labeler = final.labeler.model_copy(update={"calibrator": calibrator, "join_weight": join_weight})
    _, L_unl = votes.matrices(labeler.lfs)
    probs, covered = labeler.proba(L_unl, corpus.unl_emb, None if views is None else views.unl_emb)
    metrics = _metrics(corpus, config, heldout, raw_heldout, heldout_covered, covered, final, heldout_decisions)
    metrics.join_weight = join_weight
    return PipelineResult(final=final, labeler=labeler, metrics=metrics, probs=probs, covered=covered,
                          heldout_probs=heldout, votes=votes, fold_kept=fold_kept)


def seen_as_unlabeled(L_seed: np.ndarray, L_unl: np.ndarray, lfs: list[LabelingFunction], *,
                      seed: int) -> np.ndarray:
    """Seed votes as a silver row would see them. A lookup LF (the LLM's record labels) votes on every seed,
    which it labels so that it can be judged, but only on the few unlabeled records chosen; predicted with all
    of those votes, held-out seeds would be covered better than silver rows are, and the calibrator fitted on
    them and the figures reported would be too confident. Each of its seed votes is kept with the share of
    unlabeled rows it votes on (seeded); its votes still count in full where it is judged and weighed."""
    lookup = [j for j, lf in enumerate(lfs) if lf.kind == "lookup"]
    if not lookup:
        return L_seed
    L_seed = L_seed.copy()
    rng = np.random.default_rng(seed)
    # A multi-label task's per-class lookups come from one labelling: a seed is labelled for all or none.
    by_source: dict[str, list[int]] = {}
    for j in lookup:
        source = lfs[j].provenance.source
        by_source.setdefault(source if source == ANNOTATION_SOURCE else lfs[j].name, []).append(j)
    for columns in by_source.values():
        rate = float((L_unl[:, columns] != -1).any(axis=1).mean()) if len(L_unl) else 0.0
        L_seed[np.ix_(rng.random(len(L_seed)) >= rate, columns)] = -1
    return L_seed


def join_weights(config: PipelineConfig, corpus: Corpus) -> tuple[float, ...]:
    """The label model's weights in the product join to try: the configured one, else all of JOIN_WEIGHTS
    when an expert joins the label model (without one there is nothing to weigh)."""
    if config.join_weight is not None:
        return (float(config.join_weight),)
    if config.combine != "product" or corpus.seed_emb is None or config.fallback != "embedding":
        return (1.0,)
    return JOIN_WEIGHTS


def _final_like(labeler: Labeler, corpus: Corpus, train: np.ndarray, config: PipelineConfig,
                vectors: np.ndarray) -> Labeler:
    """A fold's labeler with its expert refitted on the final encoder's vectors of the fold's training seeds:
    a stand-in for the final expert when the weight is chosen. The final encoder saw the held-out seeds too,
    so the stand-in is if anything stronger than the final expert is on new records, where the group
    encoders' experts (trained on half the seeds, with half the pairs) are far weaker: next to them the label
    model looks more useful than it is next to the final expert (evals/results/join-weight/)."""
    y = corpus.seed_y[train]
    expert = fit_expert(vectors[train], y, corpus.multi_label, config.seed, c=config.fallback_c,
                        prior=class_prior(y, corpus.k, corpus.multi_label))
    return labeler.model_copy(update={"expert": expert}) if expert is not None else labeler


def _joined(by_weight: dict[float, np.ndarray], covered: np.ndarray, corpus: Corpus,
            folds: list[np.ndarray], choose_on: dict[float, np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """Held-out predictions, each fold's at the weight the other folds chose (so the reported figures do
    not pick the best of five on themselves), and the weight all the folds choose, for the final model.
    `choose_on`: held-out predictions (same weights) to choose by, when not `by_weight` (`_final_like`)."""
    weights = list(by_weight)
    if len(weights) == 1:
        return by_weight[weights[0]], weights[0]
    choose_on = by_weight if choose_on is None else choose_on
    out = np.zeros_like(by_weight[weights[0]])
    y = corpus.seed_y
    for test in folds:
        others = np.setdiff1d(np.flatnonzero(covered), test)
        out[test] = by_weight[choose_join_weight(choose_on, y, others, corpus.multi_label)][test]
    return out, choose_join_weight(choose_on, y, np.flatnonzero(covered), corpus.multi_label)


def _cross_calibrated(raw: np.ndarray, corpus: Corpus, folds: list[np.ndarray]) -> tuple[np.ndarray, list]:
    """Calibrate each fold's held-out predictions with a calibrator fitted on the other folds; and those
    calibrators, fold by fold."""
    out = np.zeros_like(raw)
    calibrators = []
    for test in folds:
        train = np.setdiff1d(np.arange(len(raw)), test)
        calibrators.append(fit_calibrator(raw[train], corpus.seed_y[train], multi_label=corpus.multi_label))
        out[test] = calibrators[-1].transform(raw[test])
    return out, calibrators


def _cross_decided(heldout: np.ndarray, corpus: Corpus, folds: list[np.ndarray],
                   even_odds_from: list | None) -> np.ndarray:
    """Multi-label decisions per fold with thresholds chosen on the other folds only: F1-tuned there, or
    (`even_odds_from`: the calibrator each fold's held-out predictions went through) at even odds."""
    out = np.zeros(heldout.shape, dtype=bool)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(heldout)), test)
        cuts = (even_odds_thresholds(even_odds_from[f]) if even_odds_from is not None
                else f1_thresholds(heldout[train], corpus.seed_y[train]))
        out[test] = heldout[test] >= np.asarray(cuts)
    return out


def _metrics(corpus, config, heldout, raw_heldout, heldout_covered, covered, final, decisions=None) -> Metrics:
    y = corpus.seed_y
    if corpus.multi_label:
        micro, macro = multilabel_f1(y, decisions)
        accuracy, low, high = micro, *_bootstrap_interval(y, decisions, config.seed)
        ece = multilabel_expected_calibration_error(heldout, y)
        ece_raw = multilabel_expected_calibration_error(raw_heldout, y)
    else:
        pred = heldout.argmax(axis=1)
        correct = int((pred == y).sum())
        accuracy = correct / len(y)
        low, high = wilson_interval(correct, len(y))
        macro = macro_f1(y, pred, corpus.k)
        ece = expected_calibration_error(heldout, y)
        ece_raw = expected_calibration_error(raw_heldout, y)
    return Metrics(seed_accuracy=float(accuracy), seed_accuracy_low=float(low), seed_accuracy_high=float(high),
                   seed_macro_f1=float(macro), seed_ece=float(ece), seed_ece_uncalibrated=float(ece_raw),
                   seed_covered_fraction=float(heldout_covered.mean()),
                   unlabeled_coverage=float(covered.mean()) if len(covered) else 0.0,
                   n_seeds=len(y), n_unlabeled=len(corpus.unl_texts), n_candidates=len(final.candidates),
                   n_kept=len(final.lfs), folds=config.folds, label_model=final.label_model_name)


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    scores = []
    for c in range(k):
        tp = np.sum((pred == c) & (y == c))
        denominator = np.sum(pred == c) + np.sum(y == c)
        if denominator:
            scores.append(2 * tp / denominator)
    return float(np.mean(scores)) if scores else 0.0


def multilabel_f1(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    tp = (y & pred).sum(axis=0)
    fp = (~y & pred).sum(axis=0)
    fn = (y & ~pred).sum(axis=0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    per_class = [2 * t / (2 * t + a + b) for t, a, b in zip(tp, fp, fn) if (2 * t + a + b) > 0]
    return float(micro), float(np.mean(per_class)) if per_class else 0.0


def _bootstrap_interval(y, decisions, seed, rounds: int = 200) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(rounds):
        sample = rng.integers(0, len(y), len(y))
        scores.append(multilabel_f1(y[sample], decisions[sample])[0])
    return float(np.quantile(scores, 0.025)), float(np.quantile(scores, 0.975))
