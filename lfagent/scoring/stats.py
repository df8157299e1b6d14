"""Per-LF statistics: coverage, overlap, conflict on unlabeled rows; accuracy with intervals on seeds.

All of it is vectorised over LFs, and the unlabeled matrix is read in row chunks so 100k x 500 fits
comfortably in memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from lfagent.scoring.checks import (check_label_matrix, check_lf_labels, check_names,
                                    check_same_lfs, check_seed_labels)
from lfagent.scoring.intervals import wilson_intervals

CHUNK_ROWS = 8192


class LFStats(BaseModel):
    """What one LF does on the unlabeled rows and how well it does on the seeds."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: int  # the class it votes, or -1 when it votes several
    coverage: float  # fraction of unlabeled rows it votes on
    overlap: float  # fraction of unlabeled rows where it votes and another LF votes too
    conflict: float  # fraction of unlabeled rows where it votes and another LF votes a different class
    seed_coverage: float
    seed_votes: int
    seed_correct: int
    seed_accuracy: float | None  # None when it never votes on a seed
    ci_low: float  # 95% Wilson interval of the seed accuracy; (0, 1) with no votes
    ci_high: float
    chance: float  # seed accuracy an LF voting the same classes at random would expect
    per_class_precision: dict[int, float | None]
    polarity: list[int]  # classes it voted anywhere (seeds or unlabeled)

    @property
    def seed_incorrect(self) -> int:
        return self.seed_votes - self.seed_correct

    @property
    def beats_chance(self) -> bool:
        return self.seed_votes > 0 and self.ci_low > self.chance


@dataclass
class VoteProfile:
    """Counts per LF over one label matrix: votes per class, rows overlapped, rows conflicted."""

    n_rows: int
    class_votes: np.ndarray  # m x k
    overlaps: np.ndarray  # m
    conflicts: np.ndarray  # m

    @property
    def votes(self) -> np.ndarray:
        return self.class_votes.sum(axis=1)

    def fraction(self, counts: np.ndarray) -> np.ndarray:
        return counts / self.n_rows if self.n_rows else np.zeros(len(counts))


def vote_profile(L: np.ndarray, cardinality: int, chunk_rows: int = CHUNK_ROWS) -> VoteProfile:
    """Count, per LF, its votes per class and the rows where it overlaps or conflicts with another LF."""
    n, m = L.shape
    k = cardinality
    class_votes = np.zeros(m * k, dtype=np.int64)
    overlaps = np.zeros(m, dtype=np.int64)
    conflicts = np.zeros(m, dtype=np.int64)
    for start in range(0, n if m else 0, chunk_rows):  # no LFs: nothing to count (min over 0 columns fails)
        chunk = L[start:start + chunk_rows]
        voted = chunk != -1
        shared = np.count_nonzero(voted, axis=1) > 1
        # Two or more distinct classes in a row <=> its smallest and largest vote differ.
        smallest = np.where(voted, chunk, k).min(axis=1)
        disputed = shared & (smallest != chunk.max(axis=1))
        overlaps += np.count_nonzero(voted[shared], axis=0)
        conflicts += np.count_nonzero(voted[disputed], axis=0)
        rows, cols = np.nonzero(voted)
        class_votes += np.bincount(cols * k + chunk[rows, cols], minlength=m * k)
    return VoteProfile(n, class_votes.reshape(m, k), overlaps, conflicts)


def class_truth(y_seed: np.ndarray, cardinality: int) -> np.ndarray:
    """(n, k) bool: is row i of class c? Works for class indices and multi-hot alike."""
    if y_seed.ndim == 2:
        return y_seed.astype(bool)
    return y_seed[:, None] == np.arange(cardinality)[None, :]


def seed_class_counts(L_seed: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(votes, correct), each m x k: seed votes for class c and how many of them were right."""
    m, k = L_seed.shape[1], truth.shape[1]
    votes = np.zeros((m, k), dtype=np.int64)
    correct = np.zeros((m, k), dtype=np.int64)
    for c in range(k):
        voted_c = L_seed == c
        votes[:, c] = np.count_nonzero(voted_c, axis=0)
        correct[:, c] = np.count_nonzero(voted_c & truth[:, c:c + 1], axis=0)
    return votes, correct


def class_priors(truth: np.ndarray) -> np.ndarray:
    """Fraction of seeds in each class (uniform when there are no seeds)."""
    if truth.shape[0] == 0:
        return np.full(truth.shape[1], 1.0 / truth.shape[1])
    return truth.mean(axis=0)


def chance_accuracy(seed_votes: np.ndarray, all_votes: np.ndarray, labels: np.ndarray,
                    priors: np.ndarray) -> np.ndarray:
    """Expected seed accuracy of an LF whose votes ignore the truth but keep its class mix.

    A vote for class c is right by chance with probability prior(c), so chance = sum_c mix(c) prior(c),
    with the mix taken from its seed votes (else all its votes). For an LF voting one class c this is
    prior(c); for one spreading votes evenly it is 1/k (single-label). An LF with no votes at all
    falls back to prior(label), or the largest prior when it has no single label.
    """
    mix = np.where(seed_votes.sum(1, keepdims=True) > 0, seed_votes, all_votes).astype(np.float64)
    totals = mix.sum(axis=1)
    chance = (mix @ priors) / np.where(totals > 0, totals, 1.0)
    fallback = np.where(labels >= 0, priors[np.clip(labels, 0, None)], priors.max())
    return np.where(totals > 0, chance, fallback)


def lf_stats(L_seed, y_seed, L_unl, *, cardinality: int, names, lf_labels=None) -> list[LFStats]:
    """Statistics for each LF column, in column order.

    `lf_labels[j]` is the class LF j votes (-1: several); when omitted it is inferred from the votes
    (its single class, else -1). Multi-label tasks pass y_seed as (n, k) multi-hot: a vote for c is
    correct when y_seed[i, c] == 1.
    """
    k = int(cardinality)
    L_seed = check_label_matrix(L_seed, k, what="L_seed")
    L_unl = check_label_matrix(L_unl, k, what="L_unl")
    check_same_lfs(L_seed, L_unl)
    m = L_seed.shape[1]
    names = check_names(names, m)
    labels = check_lf_labels(lf_labels, m, k)
    truth = class_truth(check_seed_labels(y_seed, L_seed.shape[0], k), k)

    unl = vote_profile(L_unl, k)
    seed_votes, seed_correct = seed_class_counts(L_seed, truth)
    all_votes = seed_votes + unl.class_votes
    if labels is None:
        labels = infer_lf_labels(all_votes)
    votes, correct = seed_votes.sum(1), seed_correct.sum(1)
    low, high = wilson_intervals(correct, votes)
    chance = chance_accuracy(seed_votes, all_votes, labels, class_priors(truth))
    columns = dict(coverage=unl.fraction(unl.votes), overlap=unl.fraction(unl.overlaps),
                   conflict=unl.fraction(unl.conflicts),
                   seed_coverage=votes / L_seed.shape[0] if L_seed.shape[0] else np.zeros(m))
    return [_one_lf_stats(j, names[j], labels[j], columns, votes[j], correct[j], low[j], high[j],
                          chance[j], seed_votes[j], seed_correct[j], all_votes[j])
            for j in range(m)]


def infer_lf_labels(class_votes: np.ndarray) -> np.ndarray:
    """The single class each LF voted, or -1 when it voted several or none."""
    voted_classes = class_votes > 0
    single = voted_classes.sum(axis=1) == 1
    return np.where(single, voted_classes.argmax(axis=1), -1)


def _one_lf_stats(j, name, label, columns, votes, correct, low, high, chance,
                  class_votes, class_correct, all_votes) -> LFStats:
    precision = {c: (float(class_correct[c] / class_votes[c]) if class_votes[c] else None)
                 for c in range(len(class_votes))}
    return LFStats(
        name=name, label=int(label),
        **{key: float(values[j]) for key, values in columns.items()},
        seed_votes=int(votes), seed_correct=int(correct),
        seed_accuracy=float(correct / votes) if votes else None,
        ci_low=float(low), ci_high=float(high), chance=float(chance),
        per_class_precision=precision,
        polarity=[int(c) for c in np.flatnonzero(all_votes)])
