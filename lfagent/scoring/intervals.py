"""Wilson score intervals for a binomial proportion (LF accuracy on a few seed votes)."""
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
