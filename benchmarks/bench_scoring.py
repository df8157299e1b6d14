"""Time lf_stats, redundancy_graph and select_lfs on synthetic label matrices; prints a table.

    python benchmarks/bench_scoring.py
"""
from __future__ import annotations

import time

import numpy as np

from lfagent.scoring import lf_stats, redundancy_graph, select_lfs


def synthetic(n_rows: int, n_lfs: int, k: int, coverage: float, seed: int = 0):
    """Unipolar LFs with accuracy 0.5-0.95 on their covered rows; returns (L, y, lf_labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n_rows)
    labels = rng.integers(0, k, n_lfs)
    accuracy = rng.uniform(0.5, 0.95, n_lfs)
    # An LF fires on true-class rows with prob coverage*acc*k, elsewhere so its precision is acc.
    on_class = y[:, None] == labels[None, :]
    fire_p = np.where(on_class, np.minimum(1, coverage * accuracy * k),
                      coverage * (1 - accuracy) * k / max(k - 1, 1))
    fires = rng.random((n_rows, n_lfs)) < fire_p
    L = np.where(fires, labels[None, :], -1).astype(np.int64)
    return L, y, labels


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    print(f"{'case':<34} {'lf_stats s':>10} {'graph s':>8} {'select s':>9} {'kept':>5}")
    for n_rows, n_lfs, k, coverage in [(10_000, 100, 2, 0.05), (100_000, 500, 2, 0.02),
                                       (100_000, 500, 6, 0.02), (100_000, 200, 2, 0.5)]:
        L, y, labels = synthetic(n_rows + 100, n_lfs, k, coverage)
        L_seed, y_seed, L_unl = L[:100], y[:100], L[100:]
        names = [f"lf{j}" for j in range(n_lfs)]
        t_stats, _ = timed(lambda: lf_stats(L_seed, y_seed, L_unl, cardinality=k, names=names,
                                             lf_labels=labels))
        t_graph, _ = timed(lambda: redundancy_graph(L_unl, names, threshold=0.9, cardinality=k))
        t_select, sel = timed(lambda: select_lfs(L_seed, y_seed, L_unl, cardinality=k, names=names,
                                                 lf_labels=labels))
        case = f"{n_rows}x{n_lfs} k={k} cov={coverage}"
        print(f"{case:<34} {t_stats:>10.2f} {t_graph:>8.2f} {t_select:>9.2f} {len(sel.kept):>5}")


if __name__ == "__main__":
    main()
