"""Dawid-Skene EM with abstain as an extra outcome (k+1 columns per LF).

Each LF j has a confusion table P(L_j = o | Y = c) over o in {0..k-1, abstain}. Modelling the abstain
lets EM tell a precise unipolar LF from a noisy one (treating abstain as missing cannot: FIELD-NOTES).
Dirichlet pseudo-counts shrink each table row toward the LF's marginal outcome distribution (an LF
that says nothing about the class), so sparse LFs with a handful of votes cannot claim certainty.

Two options serve a source that labels some records and was never asked about the rest (an LLM's record
labels): `unasked` columns get one abstain rate for every class, since which records it was asked about says
nothing about their class; and `known` rows of known class (the seeds it also labelled without seeing their
labels) give its tables outright, and every other LF is then measured against it, in one step, on the records
it labelled. Left to EM, such a source beside one or two sparse LFs is not identified, and beside several LFs
that vote together (keywords of one class) the latent class drifts, round by round, to what those LFs catch,
reading the source's other labels of that class as its mistakes. Holding only the source's tables fixed
inside EM does not stop that: the other LFs' tables still sharpen round by round.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lfagent.fit.statistics import Votes, as_votes, vote_patterns

_FLOOR = 1e-12
# EM's parameters (m x k x (k+1) rates and k priors) from at most this many distinct rows: an LF voting on
# 1% of 200,000 rows still casts 2,000 votes, so each rate it estimates has sd <= 0.011, and more rows only
# cost time (a 1M x 50 dense matrix: 0.28 s of EM against 0.07 s)
EM_ROWS = 200_000


@dataclass(frozen=True)
class DawidSkeneFit:
    """Fitted parameters. `confusion[j, c, o]` = P(LF j outputs o | true class c); o == k is abstain."""

    class_prior: np.ndarray
    confusion: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool


class _OneHot:
    """The n x (m*k) one-hot vote matrix S, multiplied by k columns at once: two classes per complex number.

    With S's entries stored as 1 + 0j, one pass over them carries two classes (real and imaginary
    parts), which costs less than a real pass per class; each part is rounded exactly as in the real
    product, in the same order, so the fit is unchanged.
    """

    def __init__(self, votes: Votes):
        self.S = sp.csr_matrix((np.ones(votes.cols.shape[0], dtype=complex), votes.cols, votes.indptr),
                               shape=(votes.n_rows, votes.n_lfs * votes.cardinality))

    def times(self, X: np.ndarray) -> np.ndarray:
        """(S @ X).T for a (m*k) x k real X: k x n."""
        out = np.empty((X.shape[1], self.S.shape[0]))
        for first, pair in _class_pairs(X.T):
            _unpack(self.S @ pair, out[first:first + 2])
        return out

    def transposed_times(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S.T @ Y.T, each row of Y summed first to last) for a k x n real Y: (m*k) x k and k."""
        out = np.empty((self.S.shape[1], Y.shape[0]))  # row-major, as the M-step's sums expect
        totals = np.empty(Y.shape[0])
        for first, pair in _class_pairs(Y):
            _unpack(self.S.T @ pair, out.T[first:first + 2])
            total = _sequential_sum(pair)
            totals[first:first + 2] = (total.real, total.imag)[:Y.shape[0] - first]
        return out, totals


@dataclass(frozen=True)
class KnownRows:
    """Rows of known class that measure some LFs: those LFs' tables are these rows' counts (smoothed), and the
    other LFs and the class prior are measured against them (`fit_dawid_skene`).

    `tables[j, c, o]`: how many of the rows are of class c and got outcome o from LF j (o == k: abstain); all
    zero for an LF they must not measure (one mined from these very rows would look better than it is).
    `classes[c]`: how many are of class c (they count toward the class prior)."""

    tables: np.ndarray
    classes: np.ndarray

    @property
    def measured(self) -> np.ndarray:
        """The LFs that voted on some of the rows; one that only abstained there is left to EM."""
        return self.tables[:, :, :-1].sum(axis=(1, 2)) > 0

    @classmethod
    def from_votes(cls, L: np.ndarray, y: np.ndarray, k: int, columns) -> "KnownRows":
        """From checked votes `L` (n x m) and classes `y` (n,), counting the votes of `columns` only."""
        L, y = np.asarray(L), np.asarray(y, dtype=np.int64)
        tables = np.zeros((L.shape[1], k, k + 1))
        for j in columns:
            np.add.at(tables[j], (y, np.where(L[:, j] < 0, k, L[:, j])), 1.0)
        return cls(tables=tables, classes=np.bincount(y, minlength=k).astype(float))


def _class_pairs(rows: np.ndarray):
    """(first class, complex vector) for classes (0, 1), (2, 3), ...; an odd last class alone."""
    for first in range(0, rows.shape[0], 2):
        pair = np.empty(rows.shape[1], dtype=complex)
        pair.real = rows[first]
        pair.imag = rows[first + 1] if first + 1 < rows.shape[0] else 0.0
        yield first, pair


def _unpack(pair: np.ndarray, out: np.ndarray) -> None:
    out[0] = pair.real
    if out.shape[0] > 1:
        out[1] = pair.imag


def _smoothing_base(votes: Votes, n_rows: float) -> np.ndarray:
    """Each LF's marginal outcome distribution (m x (k+1)), the center of the Dirichlet prior."""
    n_lfs, k = votes.n_lfs, votes.cardinality
    vote_rate = votes.code_counts.reshape(n_lfs, k) / n_rows
    base = np.concatenate([vote_rate, 1.0 - vote_rate.sum(axis=1, keepdims=True)], axis=1)
    base = np.clip(base, 1e-6, None)  # an outcome never seen keeps a sliver of mass
    return base / base.sum(axis=1, keepdims=True)


# EM keeps posteriors class by class (k x n): elementwise work on contiguous columns is several
# times faster than on tall n x k arrays, and each class's sums and products run in the same
# order as on n x k arrays, so the fit is the same to the last bit.


def _sequential_sum(x: np.ndarray) -> complex:
    """Sum from first to last, as numpy sums a column of an n x k array (a cumulative sum, not
    the pairwise summation numpy uses on a contiguous vector)."""
    return np.cumsum(x)[-1] if x.shape[0] else 0j


def _m_step(S: _OneHot, Q_weighted, base, smoothing, k, known: KnownRows | None = None, unasked=()):
    n_lfs = base.shape[0]
    votes, class_mass = S.transposed_times(Q_weighted)
    votes = votes.reshape(n_lfs, k, k)  # [j, outcome, class]
    abstains = class_mass[None, :] - votes.sum(axis=1)  # [j, class]
    counts = np.concatenate([votes, np.clip(abstains, 0.0, None)[:, None, :]], axis=1)
    counts = counts.transpose(0, 2, 1) + smoothing * base[:, None, :]  # [j, class, outcome]
    if known is not None:  # the measured LFs' tables are the known rows' counts, not EM's
        measured = known.measured
        counts[measured] = known.tables[measured] + smoothing * base[measured][:, None, :]
        class_mass = class_mass + known.classes
    confusion = counts / counts.sum(axis=2, keepdims=True)
    for j in unasked:  # one abstain rate for every class; the votes' split stays class by class
        rate = counts[j, :, k].sum() / counts[j].sum()
        confusion[j, :, :k] = counts[j, :, :k] / counts[j, :, :k].sum(axis=1, keepdims=True) * (1.0 - rate)
        confusion[j, :, k] = rate
    return confusion, class_mass


def _prior(class_mass: np.ndarray, class_prior: np.ndarray | None, k: int) -> np.ndarray:
    """The class prior: the fixed one if given, else the class mass smoothed by one per class."""
    return class_prior if class_prior is not None else (class_mass + 1.0) / (class_mass.sum() + k)


def log_joint(S: _OneHot, class_prior: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """k x n log P(Y = c, L_i) under conditional independence of the LFs given Y."""
    n_lfs, k, _ = confusion.shape
    log_conf = np.log(np.maximum(confusion, _FLOOR))
    all_abstain = log_conf[:, :, k].sum(axis=0)  # [class]
    vote_gain = (log_conf[:, :, :k] - log_conf[:, :, k:]).transpose(0, 2, 1).reshape(n_lfs * k, k)
    log_prior = np.log(np.maximum(class_prior, _FLOOR))
    joint = S.times(vote_gain)
    for c in range(k):
        joint[c] += all_abstain[c]
        joint[c] += log_prior[c]
    return joint


def _class_reduce(ufunc: np.ufunc, X: np.ndarray) -> np.ndarray:
    """`ufunc` folded over the k rows of the k x n array `X`, first to last (as `row_reduce`)."""
    out = ufunc(X[0], X[1])
    for c in range(2, X.shape[0]):
        ufunc(out, X[c], out=out)
    return out


def _normalise(log_joint_columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(posterior, log-likelihood per row) from the k x n log joint, which is overwritten."""
    top = _class_reduce(np.maximum, log_joint_columns)
    expd = np.subtract(log_joint_columns, top, out=log_joint_columns)
    np.exp(expd, out=expd)
    total = _class_reduce(np.add, expd)
    expd /= total
    loglik = np.log(total)
    loglik += top
    return expd, loglik


def _initial_posterior(S: _OneHot, k, class_prior, seed):
    """k x n soft majority vote (the prior spread as one pseudo-vote); see `majority_proba_from_counts`."""
    prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, float)
    start = S.times(np.tile(np.eye(k), (S.S.shape[1] // k, 1)))  # votes per class: code j*k + c -> class c
    for c in range(k):
        start[c] += prior[c]
    start /= _class_reduce(np.add, start)
    if max(np.ptp(start[c]) for c in range(k)) > 1e-9:
        return start  # informative start: no randomness, so LF order cannot matter
    # every row looks alike: a seeded jitter breaks the symmetry reproducibly (drawn n x k, as always)
    jitter = np.random.default_rng(seed).uniform(0.0, 1e-3, size=start.shape[::-1])
    rows = np.ascontiguousarray(start.T) + jitter  # row-major, so each row sums as before
    return np.ascontiguousarray((rows / rows.sum(axis=1, keepdims=True)).T)


def fit_dawid_skene(L: np.ndarray | Votes, cardinality: int, *, class_prior: np.ndarray | None = None,
                    smoothing: float = 1.0, max_iter: int = 300, tol: float = 1e-7,
                    seed: int = 0, max_rows: int = EM_ROWS, known: KnownRows | None = None,
                    unasked: tuple[int, ...] = ()) -> DawidSkeneFit:
    """Fit by EM from a majority-vote start; with `known` rows that measure some LF, in one step against those LFs
    instead (see the module doc, as for `unasked`). `L` must be checked (or be its `Votes`); `class_prior` fixed
    if given.

    `smoothing` is the Dirichlet pseudo-count per (LF, class) table row. EM runs on the distinct
    vote patterns weighted by their counts, so cost grows with distinct rows, not rows. Above `max_rows`
    distinct rows it runs on a seeded sample of `max_rows` rows (see EM_ROWS).
    """
    k = cardinality
    votes = as_votes(L, k)
    patterns, _, counts = vote_patterns(votes, k)
    if patterns.n_rows > max_rows:
        sample = np.sort(np.random.default_rng(seed).choice(votes.n_rows, max_rows, replace=False))
        votes = votes.take(sample)
        patterns, _, counts = vote_patterns(votes, k)
    S = _OneHot(patterns)
    base = _smoothing_base(votes, counts.sum())
    if known is not None and known.measured.any():
        fit = _fit_against_measured(S, counts, base, smoothing, k, known, unasked, class_prior)
        if fit is not None:
            return fit
    Q = _initial_posterior(S, k, class_prior, seed)
    unit_counts = bool(np.all(counts == 1.0))  # every row its own pattern: weighting changes nothing
    previous, converged, iteration = -np.inf, False, 0
    for iteration in range(1, max_iter + 1):
        confusion, class_mass = _m_step(S, Q if unit_counts else Q * counts, base, smoothing, k, known, unasked)
        prior = _prior(class_mass, class_prior, k)
        Q, row_loglik = _normalise(log_joint(S, prior, confusion))
        loglik = float(row_loglik @ counts)
        if abs(loglik - previous) <= tol * max(1.0, abs(loglik)):
            converged = True
            break
        previous = loglik
    return DawidSkeneFit(class_prior=np.asarray(prior, float), confusion=confusion,
                         log_likelihood=loglik, n_iter=iteration, converged=converged)


def _fit_against_measured(S: _OneHot, counts, base, smoothing, k, known: KnownRows, unasked,
                          class_prior) -> DawidSkeneFit | None:
    """The measured LFs' tables from the known rows; every other LF's (and the prior) in one step, against the
    measured LFs' posterior on the records they vote on. No EM rounds: each would let LFs that vote together
    pull the latent class toward what they catch. None when they vote on no record (nothing to measure
    against: EM fits the others then)."""
    confusion, class_mass = _m_step(S, np.zeros((k, S.S.shape[0])), base, smoothing, k, known, unasked)
    prior = _prior(class_mass, class_prior, k)
    Q, _ = _normalise(log_joint(S, prior, confusion))
    columns = np.concatenate([np.arange(j * k, (j + 1) * k) for j in np.flatnonzero(known.measured)])
    voted = np.asarray(abs(S.S[:, columns]).sum(axis=1)).ravel() > 0  # patterns where a measured LF votes
    if not voted.any():
        return None
    confusion, class_mass = _m_step(S, Q * (counts * voted), base, smoothing, k, known, unasked)
    prior = _prior(class_mass, class_prior, k)
    return DawidSkeneFit(class_prior=np.asarray(prior, float), confusion=confusion, log_likelihood=float("nan"),
                         n_iter=1, converged=True)


def dawid_skene_proba(L: np.ndarray, fit: DawidSkeneFit) -> np.ndarray:
    """n x k posterior P(Y | L_i) for checked `L` (per row: a sparse product costs less than deduplicating)."""
    k = fit.class_prior.shape[0]
    if L.shape[0] == 0:
        return np.zeros((0, k))
    posterior, _ = _normalise(log_joint(_OneHot(Votes.from_matrix(L, k)), fit.class_prior, fit.confusion))
    return np.ascontiguousarray(posterior.T)
