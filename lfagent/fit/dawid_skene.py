"""Dawid-Skene EM with abstain as an extra outcome (k+1 columns per LF).

Each LF j has a confusion table P(L_j = o | Y = c) over o in {0..k-1, abstain}. Modelling the abstain
lets EM tell a precise unipolar LF from a noisy one (treating abstain as missing cannot: FIELD-NOTES).
Dirichlet pseudo-counts shrink each table row toward the LF's marginal outcome distribution (an LF
that says nothing about the class), so sparse LFs with a handful of votes cannot claim certainty.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lfagent.fit.majority import majority_proba_from_counts
from lfagent.fit.statistics import row_reduce, vote_matrix, vote_patterns

_FLOOR = 1e-12


@dataclass(frozen=True)
class DawidSkeneFit:
    """Fitted parameters. `confusion[j, c, o]` = P(LF j outputs o | true class c); o == k is abstain."""

    class_prior: np.ndarray
    confusion: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool


def _smoothing_base(S: sp.csr_matrix, row_weights: np.ndarray, n_lfs: int, k: int) -> np.ndarray:
    """Each LF's marginal outcome distribution (m x (k+1)), the center of the Dirichlet prior."""
    vote_rate = (S.T @ row_weights).reshape(n_lfs, k) / row_weights.sum()
    base = np.concatenate([vote_rate, 1.0 - vote_rate.sum(axis=1, keepdims=True)], axis=1)
    base = np.clip(base, 1e-6, None)  # an outcome never seen keeps a sliver of mass
    return base / base.sum(axis=1, keepdims=True)


def _m_step(S, Q_weighted, base, smoothing, k):
    n_lfs = base.shape[0]
    votes = (S.T @ Q_weighted).reshape(n_lfs, k, k)  # [j, outcome, class]
    class_mass = Q_weighted.sum(axis=0)
    abstains = class_mass[None, :] - votes.sum(axis=1)  # [j, class]
    counts = np.concatenate([votes, np.clip(abstains, 0.0, None)[:, None, :]], axis=1)
    counts = counts.transpose(0, 2, 1) + smoothing * base[:, None, :]  # [j, class, outcome]
    return counts / counts.sum(axis=2, keepdims=True), class_mass


def log_joint(S: sp.csr_matrix, class_prior: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """n x k log P(Y = c, L_i) under conditional independence of the LFs given Y."""
    n_lfs, k, _ = confusion.shape
    log_conf = np.log(np.maximum(confusion, _FLOOR))
    all_abstain = log_conf[:, :, k].sum(axis=0)  # [class]
    vote_gain = (log_conf[:, :, :k] - log_conf[:, :, k:]).transpose(0, 2, 1).reshape(n_lfs * k, k)
    return np.asarray(S @ vote_gain) + all_abstain[None, :] + np.log(np.maximum(class_prior, _FLOOR))[None, :]


def _normalise(log_joint_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = row_reduce(np.maximum, log_joint_rows)
    expd = np.exp(log_joint_rows - top)
    total = row_reduce(np.add, expd)
    return expd / total, (np.log(total) + top).ravel()


def _initial_posterior(S: sp.csr_matrix, k, class_prior, seed):
    class_counts = np.asarray(S @ np.tile(np.eye(k), (S.shape[1] // k, 1)))  # votes per class, per row
    start = majority_proba_from_counts(class_counts, class_prior)
    if max(np.ptp(start[:, c]) for c in range(k)) > 1e-9:  # per column: numpy's axis=0 is slow on n x k
        return start  # informative start: no randomness, so LF order cannot matter
    # every row looks alike: a seeded jitter breaks the symmetry reproducibly
    jitter = np.random.default_rng(seed).uniform(0.0, 1e-3, size=start.shape)
    start = start + jitter
    return start / start.sum(axis=1, keepdims=True)


def fit_dawid_skene(L: np.ndarray, cardinality: int, *, class_prior: np.ndarray | None = None,
                    smoothing: float = 1.0, max_iter: int = 300, tol: float = 1e-7,
                    seed: int = 0) -> DawidSkeneFit:
    """Fit by EM from a majority-vote start. `L` must be checked; `class_prior` fixed if given.

    `smoothing` is the Dirichlet pseudo-count per (LF, class) table row. EM runs on the distinct
    vote patterns weighted by their counts, so cost grows with distinct rows, not rows.
    """
    k, n_lfs = cardinality, L.shape[1]
    L_unique, _, counts = vote_patterns(L)
    S = vote_matrix(L_unique, k)
    base = _smoothing_base(S, counts, n_lfs, k)
    Q = _initial_posterior(S, k, class_prior, seed)
    previous, converged, iteration = -np.inf, False, 0
    for iteration in range(1, max_iter + 1):
        confusion, class_mass = _m_step(S, Q * counts[:, None], base, smoothing, k)
        prior = class_prior if class_prior is not None else (class_mass + 1.0) / (class_mass.sum() + k)
        Q, row_loglik = _normalise(log_joint(S, prior, confusion))
        loglik = float(row_loglik @ counts)
        if abs(loglik - previous) <= tol * max(1.0, abs(loglik)):
            converged = True
            break
        previous = loglik
    return DawidSkeneFit(class_prior=np.asarray(prior, float), confusion=confusion,
                         log_likelihood=loglik, n_iter=iteration, converged=converged)


def dawid_skene_proba(L: np.ndarray, fit: DawidSkeneFit) -> np.ndarray:
    """n x k posterior P(Y | L_i) for checked `L` (per row: a sparse product costs less than deduplicating)."""
    k = fit.class_prior.shape[0]
    if L.shape[0] == 0:
        return np.zeros((0, k))
    posterior, _ = _normalise(log_joint(vote_matrix(L, k), fit.class_prior, fit.confusion))
    return posterior
