"""(Weighted) majority vote with class-prior tie breaking."""
from __future__ import annotations

import numpy as np

from lfagent.fit.label_matrix import vote_counts
from lfagent.fit.statistics import row_reduce


def majority_vote_proba(L: np.ndarray, cardinality: int, *, class_prior: np.ndarray | None = None,
                        weights: np.ndarray | None = None) -> np.ndarray:
    """Soft majority vote: P(c) proportional to (weighted) votes for c plus the prior of c.

    One pseudo-vote spread by the class prior breaks ties toward the likelier class and gives
    rows with no votes exactly the prior. `L` must already be checked.

    >>> majority_vote_proba(np.array([[0, 1, 1], [-1, -1, -1]]), 2, class_prior=np.array([.8, .2]))
    array([[0.45, 0.55],
           [0.8 , 0.2 ]])
    """
    counts = vote_counts(L, cardinality, weights)
    if weights is not None:
        # scale so one pseudo-vote is worth one average-weight vote
        counts = counts / max(float(np.mean(np.abs(weights))), 1e-12)
    return majority_proba_from_counts(counts, class_prior)


def majority_proba_from_counts(counts: np.ndarray, class_prior: np.ndarray | None = None) -> np.ndarray:
    """Soft majority vote from the n x k vote counts per class (see `majority_vote_proba`)."""
    k = counts.shape[1]
    prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, float)
    scores = counts + prior[None, :]
    return scores / row_reduce(np.add, scores)


def majority_vote(L: np.ndarray, cardinality: int, *, class_prior: np.ndarray | None = None,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Hard majority vote (ties go to the class with the higher prior; no votes -> prior's argmax)."""
    return majority_vote_proba(L, cardinality, class_prior=class_prior, weights=weights).argmax(axis=1)
