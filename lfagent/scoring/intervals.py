"""Estimates of a rate from a few seed votes: Wilson intervals and prior-smoothed precision."""
from __future__ import annotations

import numpy as np


def wilson_intervals(successes, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson interval: arrays of successes and trials -> (low, high) arrays.

    Rows with n == 0 get the uninformative interval (0, 1).
    """
    successes = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    safe_n = np.where(n > 0, n, 1.0)
    p = successes / safe_n
    z2 = z * z
    denom = 1.0 + z2 / safe_n
    center = (p + z2 / (2 * safe_n)) / denom
    half = z / denom * np.sqrt(np.maximum(p * (1 - p) / safe_n + z2 / (4 * safe_n**2), 0.0))
    # The interval contains p in exact arithmetic; min/max stops rounding from breaking that at 0 and 1.
    low = np.where(n > 0, np.clip(np.minimum(center - half, p), 0.0, 1.0), 0.0)
    high = np.where(n > 0, np.clip(np.maximum(center + half, p), 0.0, 1.0), 1.0)
    return low, high


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` (n = 0 -> (0, 1)).

    >>> tuple(round(v, 3) for v in wilson_interval(8, 10))
    (0.49, 0.943)
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    low, high = wilson_intervals(successes, n, z)
    return float(low), float(high)


def smoothed_precision(hits_c, hits, prior_c, smoothing: float = 2.0):
    """(hits_c + s * prior_c) / (hits + s): a precision from few votes, shrunk toward the class prior."""
    return (np.asarray(hits_c, dtype=np.float64) + smoothing * np.asarray(prior_c)) / (np.asarray(hits) + smoothing)


def keyword_bar(prior_c, min_precision: float = 0.6):
    """The smoothed precision a keyword must reach to count as a cue for its class: 0.6, and 0.1 above
    the class's prior (a cue for a 90% class must do better than saying it always)."""
    return np.maximum(min_precision, np.asarray(prior_c) + 0.1)
