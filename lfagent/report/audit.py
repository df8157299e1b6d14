"""Label-error audit (after "Pervasive Label Errors" and InfFeed): what deserves a human look.

(a) seed_error: seed labels that a confident model contradicts. Each seed's probabilities are the
    cross-fitted ones in heldout.jsonl, from a model that never saw that seed, so a seed cannot vouch for
    itself. cleanlab's confident learning flags issues; the rank is by label quality (self-confidence).
(b) silver_review: silver records most worth checking: a small confidence margin, no LF vote (fallback
    label), LFs that disagree, a rare predicted class.

`audit_run` is the one entry point for the CLI and the REPL; the scoring functions are pure.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from lfagent.errors import require
from lfagent.rundir.read import RunArtifacts, load_run
from lfagent.report.summary import confidence_margin, record_disagreement

EPS = 1e-6
# Weights of the silver-review signals; uncertainty counts most: it is what the model itself admits.
SILVER_WEIGHTS = {"uncertain": 0.45, "disagreement": 0.25, "uncovered": 0.2, "rare": 0.1}


class AuditRow(BaseModel):
    """One line of the review queue."""

    kind: Literal["seed_error", "silver_review"]
    id: str | int
    text: str | None = None
    given_label: str | list[str] | None
    suggested_label: str | list[str] | None
    score: float = Field(description="higher = more worth a look; seed_error: 1 - label quality")
    reason: str
    probs: dict[str, float] = Field(default_factory=dict)


class AuditResult(BaseModel):
    seed_errors: list[AuditRow]
    silver_review: list[AuditRow]
    notes: list[str] = Field(default_factory=list)

    @property
    def rows(self) -> list[AuditRow]:
        return self.seed_errors + self.silver_review


# -- (a) seed errors ---------------------------------------------------------------------------------

def _normalised(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(probs, dtype=float), EPS, None)
    return probs / probs.sum(axis=1, keepdims=True)


def seed_issue_scores(probs: np.ndarray, y: np.ndarray, *, multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    """(score, flagged): score = 1 - cleanlab label quality (higher = more likely wrong); flagged by
    cleanlab's find_label_issues, or, when it cannot run (too few seeds per class), by the model's
    decision contradicting the label."""
    probs = np.asarray(probs, dtype=float)
    require("cleanlab", extra="audit", feature="the audit of seed labels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multi_label:
            return _multilabel_issue_scores(np.clip(probs, EPS, 1 - EPS), np.asarray(y, dtype=int))
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        pred = _normalised(probs)
        y = np.asarray(y, dtype=int)
        quality = get_label_quality_scores(y, pred, method="self_confidence")
        try:
            flagged = np.asarray(find_label_issues(y, pred, filter_by="prune_by_noise_rate"), dtype=bool)
        except (ValueError, IndexError, ZeroDivisionError):
            flagged = pred.argmax(axis=1) != y
    return 1.0 - np.asarray(quality, dtype=float), flagged


def _multilabel_issue_scores(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    labels = [list(np.flatnonzero(row)) for row in y]
    wrong_way = np.abs(y - probs) > 0.5  # per-class fallback: the model decides the class the other way
    try:
        quality = np.asarray(get_label_quality_scores(labels, probs), dtype=float)
    except (ValueError, IndexError, ZeroDivisionError):
        quality = 1.0 - np.abs(y - probs).max(axis=1)
    try:
        flagged = np.asarray(find_label_issues(labels, probs), dtype=bool)
    except (ValueError, IndexError, ZeroDivisionError):
        flagged = wrong_way.any(axis=1)
    return 1.0 - quality, flagged


def rank_seed_errors(ids: list, texts: list[str | None], probs: np.ndarray, y: np.ndarray, class_names: list[str],
                     *, multi_label: bool, top: int) -> list[AuditRow]:
    """Seeds whose label a cross-fitted model contradicts (cleanlab-flagged or decided otherwise), worst first."""
    known = np.ones(len(ids), bool) if multi_label else np.asarray(y) >= 0
    if not known.any():
        return []
    index = np.flatnonzero(known)
    probs, y = np.asarray(probs, float)[index], np.asarray(y)[index]
    score, flagged = seed_issue_scores(probs, y, multi_label=multi_label)
    decided = (np.abs(y - probs) > 0.5).any(axis=1) if multi_label else probs.argmax(axis=1) != y
    chosen = np.flatnonzero(flagged | decided)
    chosen = chosen[np.argsort(-score[chosen], kind="stable")][:top]
    return [_seed_row(ids[index[i]], texts[index[i]], probs[i], y[i], class_names, multi_label,
                      float(score[i]), bool(flagged[i])) for i in chosen]


def _seed_row(rid, text, p, y, names, multi_label, score, flagged) -> AuditRow:
    by = "cleanlab flags it" if flagged else "the model decides otherwise"
    if multi_label:
        given = [names[c] for c in np.flatnonzero(y)]
        suggested = [names[c] for c in np.flatnonzero(p >= 0.5)]
        flips = [f"{'drop' if y[c] else 'add'} {names[c]} (p={p[c]:.2f})"
                 for c in np.flatnonzero(np.abs(y - p) > 0.5)]
        reason = f"cross-fitted model would {', '.join(flips) or 'keep the labels'}; {by}"
    else:
        given, suggested = names[int(y)], names[int(np.argmax(p))]
        reason = (f"cross-fitted model: {given} p={p[int(y)]:.2f}, {suggested} p={p.max():.2f}; {by}")
    return AuditRow(kind="seed_error", id=rid, text=text, given_label=given, suggested_label=suggested,
                    score=round(score, 4), reason=reason, probs=_probs_dict(names, p))


def _probs_dict(names: list[str], p: np.ndarray) -> dict[str, float]:
    return {n: round(float(v), 4) for n, v in zip(names, p)}


# -- (b) silver records worth a look ---------------------------------------------------------------

@dataclass
class SilverSignals:
    """Per-record signals in [0, 1]; `disagreement` is None when no LF votes could be rebuilt."""

    uncertain: np.ndarray
    uncovered: np.ndarray
    disagreement: np.ndarray | None
    rare: np.ndarray
    rare_share: np.ndarray  # share of silver records in the record's rarest predicted class


def silver_signals(probs: np.ndarray, covered: np.ndarray, *, multi_label: bool,
                   L: np.ndarray | None = None) -> SilverSignals:
    """Signals for each silver record; `L` (n x m, -1 abstain) gives the LF disagreement signal."""
    probs = np.asarray(probs, dtype=float)
    n, k = probs.shape
    if multi_label:
        decided = probs >= 0.5
        share = decided.mean(axis=0) if n else np.zeros(k)
        expected = max(float(share.mean()), EPS)
        rare_share = np.where(decided, share[None, :], np.inf).min(axis=1)
        rare_share = np.where(np.isinf(rare_share), expected, rare_share)
    else:
        predicted = probs.argmax(axis=1)
        share = np.bincount(predicted, minlength=k) / max(n, 1)
        expected = 1.0 / k
        rare_share = share[predicted]
    disagreement = record_disagreement(L, k) if L is not None and L.shape[1] else None
    return SilverSignals(uncertain=1.0 - confidence_margin(probs, multi_label),
                         uncovered=1.0 - np.asarray(covered, dtype=float), disagreement=disagreement,
                         rare=np.clip(1.0 - rare_share / expected, 0.0, 1.0), rare_share=rare_share)


def silver_review_scores(signals: SilverSignals) -> np.ndarray:
    """Weighted sum of the signals (weights renormalised when LF votes are missing)."""
    parts = {"uncertain": signals.uncertain, "uncovered": signals.uncovered, "rare": signals.rare}
    if signals.disagreement is not None:
        parts["disagreement"] = signals.disagreement
    total = sum(SILVER_WEIGHTS[name] for name in parts)
    return sum(SILVER_WEIGHTS[name] * values for name, values in parts.items()) / total


def _silver_reason(signals: SilverSignals, i: int, names_for_rare: str) -> str:
    reasons = []
    if signals.uncertain[i] >= 0.5:
        reasons.append(f"low confidence margin {1 - signals.uncertain[i]:.2f}")
    if signals.uncovered[i] > 0:
        reasons.append("no LF voted (fallback label)")
    if signals.disagreement is not None and signals.disagreement[i] > 0:
        reasons.append(f"LFs disagree ({signals.disagreement[i]:.0%} of votes against the majority)")
    if signals.rare[i] > 0.5:
        reasons.append(f"rare predicted class {names_for_rare} ({signals.rare_share[i]:.1%} of silver)")
    return "; ".join(reasons) or "highest combined score"


def rank_silver_review(ids: list, texts: list[str | None], probs: np.ndarray, covered: np.ndarray,
                       class_names: list[str], *, multi_label: bool, top: int,
                       L: np.ndarray | None = None) -> list[AuditRow]:
    """The `top` silver records most worth a human look, highest score first."""
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:
        return []
    signals = silver_signals(probs, covered, multi_label=multi_label, L=L)
    score = silver_review_scores(signals)
    rows = []
    for i in np.argsort(-score, kind="stable")[:top]:
        p = probs[i]
        if multi_label:
            given = [class_names[c] for c in np.flatnonzero(p >= 0.5)]
            toggled = int(np.argmin(np.abs(2 * p - 1)))
            suggested = sorted(set(given) ^ {class_names[toggled]}, key=class_names.index)
            rare_names = ",".join(given) or "(none)"
        else:
            order = np.argsort(-p)
            given, suggested = class_names[order[0]], class_names[order[1]] if len(order) > 1 else None
            rare_names = given
        rows.append(AuditRow(kind="silver_review", id=ids[i], text=texts[i], given_label=given,
                             suggested_label=suggested, score=round(float(score[i]), 4),
                             reason=_silver_reason(signals, i, rare_names), probs=_probs_dict(class_names, p)))
    return rows


# -- the run-level entry point and the queue file ----------------------------------------------------

def audit_run(run_dir: str | Path | RunArtifacts, *, top: int = 20, votes: bool = True, embeddings: bool = True,
              sandbox: bool = True) -> AuditResult:
    """Rank seed-label errors and silver records to review for a run directory.

    `top` caps each list. `votes` rebuilds the kept LFs' votes on the unlabeled records (for the
    disagreement signal and the texts); `embeddings`/`sandbox` allow embedding and code LFs in that.
    Raises InputError for a missing or damaged run directory.
    """
    run = run_dir if isinstance(run_dir, RunArtifacts) else load_run(run_dir)
    names, multi = run.class_names, run.multi_label
    notes: list[str] = []
    if not run.heldout:
        notes.append("no heldout.jsonl: seed labels not audited")
    seed_rows = rank_seed_errors([r.get("id") for r in run.heldout], [r.get("text") for r in run.heldout],
                                 run.heldout_probs(), run.heldout_truth(), names, multi_label=multi,
                                 top=top) if run.heldout else []
    L, texts = None, [None] * len(run.silver)
    if votes and run.silver:
        from lfagent.report.votes import kept_lf_votes

        kept = kept_lf_votes(run, embeddings=embeddings, sandbox=sandbox)
        notes += [kept.note] if kept.note else []
        notes += [f"LF {name} not used for disagreement: {why}" for name, why in kept.skipped.items()]
        if len(kept.ids) == len(run.silver):
            L, texts = kept.L, kept.texts
        elif kept.ids:
            notes.append("unlabeled file no longer matches silver.jsonl; LF disagreement and texts left out")
    silver_rows = rank_silver_review([r.get("id") for r in run.silver], texts, run.silver_probs(),
                                     run.silver_covered(), names, multi_label=multi, top=top, L=L)
    return AuditResult(seed_errors=seed_rows, silver_review=silver_rows, notes=notes)


def write_review_queue(path: str | Path, rows: list[AuditRow]) -> int:
    """Write the review queue as JSONL (one AuditRow per line); returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row.model_dump(mode="json"), ensure_ascii=False) + "\n")
    return len(rows)
