"""Snorkel 0.10's LabelModel estimator ("MeTaL", Ratner et al. AAAI'19) ported to numpy.

Conditionally independent LFs. With S the n x (m*k) one-hot vote matrix (abstains leave no entry),
O = S^T S / n and P = diag(class prior), mu[j*k + o, c] = P(LF j votes o | Y = c) is fitted by
minimising
    ||mask * (O - mu P mu^T)||^2 + ||rowsum(mu P) - diag(O)||^2 (+ l2 ||mu - mu_init||^2)
where the mask drops each LF's own k x k block, by full-batch SGD with momentum from
mu_init[j*k + c, c] = P(LF j votes c) * prec_init / P(Y = c), scaled by one uniform draw of the
seed's legacy NumPy generator, as Snorkel does. Then mu is clamped, the class permutation that
makes LFs most accurate is chosen, and P(Y | votes) is proportional to prior * prod of mu over the
votes cast (abstains carry no evidence). Defaults are Snorkel's (lr 0.01, momentum 0.9, prec_init
0.7) except 500 epochs, the figure lfagent is benchmarked against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lfagent.fit.statistics import Votes, as_votes, covote_counts, row_reduce, vote_matrix

SNORKEL_EPOCHS = 500


@dataclass(frozen=True)
class MetalConfig:
    """Training settings; defaults reproduce `snorkel.labeling.model.LabelModel.fit(n_epochs=500)`."""

    n_epochs: int = SNORKEL_EPOCHS
    lr: float = 0.01
    momentum: float = 0.9
    l2: float = 0.0
    prec_init: float | tuple[float, ...] = 0.7  # one value, or one per LF
    mu_eps: float | None = None


@dataclass(frozen=True)
class MetalFit:
    """Fitted parameters: `mu` is (m*k) x k, rows j*k + o, columns true class c."""

    mu: np.ndarray
    class_prior: np.ndarray
    final_loss: float


def overlaps(L: np.ndarray | Votes, cardinality: int) -> np.ndarray:
    """O = S^T S / n for the one-hot vote matrix S, counted over each row's pairs of votes."""
    votes = as_votes(L, cardinality)
    return covote_counts(votes, cardinality) / votes.n_rows


def _off_block_mask(n_lfs: int, k: int) -> np.ndarray:
    """1 outside each LF's own k x k block: an LF's agreement with itself says nothing about Y."""
    lf_of = np.repeat(np.arange(n_lfs), k)
    return (lf_of[:, None] != lf_of[None, :]).astype(float)


def initial_mu(O: np.ndarray, class_prior: np.ndarray, prec_init, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mu_init, mu_start): diagonal guess from vote rates and the start scaled as Snorkel does."""
    k = class_prior.shape[0]
    d = O.shape[0]
    n_lfs = d // k
    precision = np.broadcast_to(np.asarray(prec_init, dtype=float), (n_lfs,))
    rates = np.diag(O).reshape(n_lfs, k)  # P(LF j votes c)
    mu_init = np.zeros((d, k))
    rows = np.arange(d)
    guess = rates * precision[:, None] / class_prior[None, :]  # P(vote c | Y = c) if precision held
    mu_init[rows, rows % k] = np.clip(guess.ravel(), 0.0, 1.0)
    # Snorkel: np.random.seed(seed); mu = mu_init * np.random.random() -- the legacy generator's first draw
    scale = np.random.RandomState(seed).random_sample()
    return mu_init, mu_init * scale


def _loss_and_grad(mu, O, mask, prior, mu_init, l2, with_loss: bool = True):
    """(loss, gradient); the loss (nan unless `with_loss`) is only reported, so only the last epoch needs it."""
    mu_p = mu * prior[None, :]
    residual = mask * (O - mu_p @ mu.T)  # symmetric
    diag_gap = mu_p.sum(axis=1) - np.diag(O)
    loss = float((residual ** 2).sum() + diag_gap @ diag_gap) if with_loss else float("nan")
    grad = -4.0 * (residual @ mu_p) + 2.0 * diag_gap[:, None] * prior[None, :]
    if l2:
        loss += float(l2 ** 2 * ((mu - mu_init) ** 2).sum()) if with_loss else 0.0
        # Snorkel adds this centred penalty *and* passes l2 as SGD weight decay (l2 * mu)
        grad += 2.0 * l2 ** 2 * (mu - mu_init) + l2 * mu
    return loss, grad


def _best_class_permutation(mu: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Among column permutations within equal-prior classes, the one with the most accurate LFs."""
    from scipy.optimize import linear_sum_assignment  # here, not at import: scipy.optimize costs ~0.4 s

    k = prior.shape[0]
    per_class = mu.reshape(-1, k, k).sum(axis=0) * prior[None, :]  # [vote, class]
    Z = np.zeros((k, k))
    groups: dict[float, list[int]] = {}
    for c, p in enumerate(prior):
        groups.setdefault(round(float(p), 3), []).append(c)
    for group in groups.values():
        sub = per_class[np.ix_(group, group)]
        rows, cols = linear_sum_assignment(-sub.T)
        for i, j in zip(rows, cols):
            Z[group[i], group[j]] = 1.0
    return mu @ Z


def fit_metal(L: np.ndarray | Votes, cardinality: int, class_prior: np.ndarray, *, seed: int = 0,
              config: MetalConfig = MetalConfig()) -> MetalFit:
    """Fit mu on the checked label matrix `L` (or its `Votes`) with a fixed class prior (Snorkel: uniform by default)."""
    k = cardinality
    votes = as_votes(L, k)
    n_lfs = votes.n_lfs
    prior = np.asarray(class_prior, dtype=float)
    O = overlaps(votes, k) if votes.n_rows else np.zeros((n_lfs * k, n_lfs * k))
    mask = _off_block_mask(n_lfs, k)
    mu_init, mu = initial_mu(O, prior, config.prec_init, seed)
    velocity = np.zeros_like(mu)
    loss = float("nan")
    for epoch in range(config.n_epochs):
        loss, grad = _loss_and_grad(mu, O, mask, prior, mu_init, config.l2, epoch == config.n_epochs - 1)
        # torch.optim.SGD with momentum, no dampening: v = momentum * v + g (v = g at step 1)
        velocity = grad if epoch == 0 else config.momentum * velocity + grad
        mu = mu - config.lr * velocity
    n = max(votes.n_rows, 1)
    mu_eps = config.mu_eps if config.mu_eps is not None else min(0.01, 10.0 ** -np.ceil(np.log10(n)))
    mu = np.clip(mu, mu_eps, 1.0 - mu_eps)
    return MetalFit(mu=_best_class_permutation(mu, prior), class_prior=prior, final_loss=loss)


def metal_proba(L: np.ndarray, fit: MetalFit) -> np.ndarray:
    """n x k P(Y | votes) proportional to prior * prod over cast votes of mu (log-space)."""
    k = fit.class_prior.shape[0]
    if L.shape[0] == 0:
        return np.zeros((0, k))
    # per row, straight from the votes: a sparse product costs less than finding the distinct rows
    scores = np.asarray(vote_matrix(L, k) @ np.log(fit.mu)) + np.log(fit.class_prior)[None, :]
    scores -= row_reduce(np.maximum, scores)
    probs = np.exp(scores)
    return probs / row_reduce(np.add, probs)


def metal_conditional_probs(fit: MetalFit) -> np.ndarray:
    """m x k x (k+1) table P(LF outputs o | class c), o == k is abstain (1 - P(any vote | c))."""
    k = fit.class_prior.shape[0]
    votes = fit.mu.reshape(-1, k, k).transpose(0, 2, 1)  # [lf, class, vote]
    return np.concatenate([votes, 1.0 - votes.sum(axis=2, keepdims=True)], axis=2)
