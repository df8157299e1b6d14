"""Seeded synthetic label matrices with known LF accuracies and propensities."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticLabels:
    L: np.ndarray            # n x m votes, -1 abstain
    y: np.ndarray            # n true classes
    accuracies: np.ndarray   # m: P(vote == y | LF votes)
    propensities: np.ndarray  # m: P(LF votes)
    class_prior: np.ndarray  # k


def make_label_matrix(n: int, accuracies, propensities, *, cardinality: int = 2,
                      class_prior=None, seed: int = 0) -> SyntheticLabels:
    """LFs vote independently given y: with prob propensity_j, vote y with prob accuracy_j, else a
    uniformly random wrong class; otherwise abstain."""
    rng = np.random.default_rng(seed)
    accuracies, propensities = np.asarray(accuracies, float), np.asarray(propensities, float)
    k, m = cardinality, len(accuracies)
    prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, float)
    y = rng.choice(k, size=n, p=prior)
    votes = rng.random((n, m)) < propensities[None, :]
    correct = rng.random((n, m)) < accuracies[None, :]
    wrong = (y[:, None] + rng.integers(1, k, size=(n, m))) % k
    L = np.where(votes, np.where(correct, y[:, None], wrong), -1)
    return SyntheticLabels(L=L.astype(np.int64), y=y, accuracies=accuracies,
                           propensities=propensities, class_prior=prior)


def make_unipolar_label_matrix(n: int, voted_class, recall, false_rate, *, cardinality: int = 2,
                               class_prior=None, seed: int = 0) -> SyntheticLabels:
    """Unipolar LFs (each votes only `voted_class[j]`): fires with prob recall_j on its class and
    false_rate_j on other classes. `accuracies` holds each LF's precision under the prior."""
    rng = np.random.default_rng(seed)
    voted_class = np.asarray(voted_class)
    recall, false_rate = np.asarray(recall, float), np.asarray(false_rate, float)
    k = cardinality
    prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, float)
    y = rng.choice(k, size=n, p=prior)
    on_class = y[:, None] == voted_class[None, :]
    fire = rng.random((n, len(voted_class))) < np.where(on_class, recall, false_rate)
    L = np.where(fire, voted_class[None, :], -1)
    hit = prior[voted_class] * recall
    precision = hit / (hit + (1 - prior[voted_class]) * false_rate)
    propensity = prior[voted_class] * recall + (1 - prior[voted_class]) * false_rate
    return SyntheticLabels(L=L.astype(np.int64), y=y, accuracies=precision,
                           propensities=propensity, class_prior=prior)
