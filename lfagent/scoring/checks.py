"""Input checks for scoring, in one place: bad shapes or labels raise InputError with a clear reason."""
from __future__ import annotations

import numpy as np

from lfagent.errors import InputError


def check_label_matrix(L, cardinality: int, *, what: str = "L") -> np.ndarray:
    """Return L as a 2-D integer array with votes in -1..k-1, or raise InputError."""
    L = np.asarray(L)
    if L.ndim != 2:
        raise InputError(f"{what} must be a 2-D label matrix (rows x LFs), got shape {L.shape}")
    if L.size == 0:
        return L.astype(np.int64, copy=False).reshape(L.shape)
    if not np.issubdtype(L.dtype, np.integer):
        raise InputError(f"{what} must hold integer votes (-1 = abstain), got dtype {L.dtype}")
    low, high = int(L.min()), int(L.max())
    if low < -1 or high >= cardinality:
        raise InputError(f"{what} holds vote {low if low < -1 else high}; votes must be -1 (abstain) "
                         f"or a class index 0..{cardinality - 1}")
    return L


def check_seed_labels(y_seed, n_rows: int, cardinality: int) -> np.ndarray:
    """Return y_seed as (n,) class indices or (n, k) 0/1 multi-hot, or raise InputError."""
    y = np.asarray(y_seed)
    if y.shape[:1] != (n_rows,):
        raise InputError(f"y_seed has {y.shape[0] if y.ndim else 0} rows but L_seed has {n_rows}")
    if y.size and not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise InputError(f"y_seed must hold integer class indices, got dtype {y.dtype}")
    if y.ndim == 1:
        if y.size and (y.min() < 0 or y.max() >= cardinality):
            raise InputError(f"y_seed holds class {int(y.min() if y.min() < 0 else y.max())}; "
                             f"classes are 0..{cardinality - 1}")
        return y.astype(np.int64, copy=False)
    if y.ndim == 2 and y.shape[1] == cardinality:
        if y.size and not np.isin(y, (0, 1)).all():
            raise InputError("multi-label y_seed must be 0/1 multi-hot")
        return y.astype(bool)
    raise InputError(f"y_seed must be (n,) class indices or (n, {cardinality}) multi-hot, "
                     f"got shape {y.shape}")


def check_names(names, n_lfs: int) -> list[str]:
    names = [str(name) for name in names]
    if len(names) != n_lfs:
        raise InputError(f"{len(names)} LF names for {n_lfs} label-matrix columns")
    if len(set(names)) != len(names):
        dupes = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"LF names must be unique; repeated: {', '.join(dupes)}")
    return names


def check_lf_labels(lf_labels, n_lfs: int, cardinality: int) -> np.ndarray | None:
    if lf_labels is None:
        return None
    labels = np.asarray(lf_labels, dtype=np.int64).reshape(-1)
    if labels.shape != (n_lfs,):
        raise InputError(f"{labels.size} lf_labels for {n_lfs} LFs")
    if labels.size and (labels.min() < -1 or labels.max() >= cardinality):
        raise InputError(f"lf_labels must be -1 (several classes) or 0..{cardinality - 1}")
    return labels


def check_same_lfs(L_seed: np.ndarray, L_unl: np.ndarray) -> None:
    if L_seed.shape[1] != L_unl.shape[1]:
        raise InputError(f"L_seed has {L_seed.shape[1]} LF columns but L_unl has {L_unl.shape[1]}")
