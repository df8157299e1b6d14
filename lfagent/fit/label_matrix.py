"""Checks and encodings of the label matrix `L` (n x m ints, -1 = abstain, classes 0..k-1)."""
from __future__ import annotations

import numpy as np

from lfagent.fit.statistics import vote_matrix
from lfagent.errors import InputError

ABSTAIN = -1
# cells per block when finding a matrix's value range: small enough to stay in cache
_RANGE_CELLS = 1 << 18


class LabelMatrixError(InputError, ValueError):
    """A label matrix, label vector or probability array is malformed (dtype, shape, range)."""


def check_cardinality(cardinality: int) -> int:
    if isinstance(cardinality, bool) or not isinstance(cardinality, (int, np.integer)) or cardinality < 2:
        raise LabelMatrixError(f"cardinality must be an int >= 2, got {cardinality!r}")
    return int(cardinality)


def check_label_matrix(L, cardinality: int, *, n_lfs: int | None = None, name: str = "L") -> np.ndarray:
    """Return `L` as an int64 array after checking dtype, shape and value range; raise otherwise."""
    arr = np.asarray(L)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)  # whole-number floats (e.g. from pandas) are harmless
        else:
            raise LabelMatrixError(f"{name} must hold integers (-1 = abstain, 0..k-1), got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise LabelMatrixError(f"{name} must be 2-D (rows x labeling functions), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise LabelMatrixError(f"{name} has no labeling-function columns (shape {arr.shape})")
    if n_lfs is not None and arr.shape[1] != n_lfs:
        raise LabelMatrixError(f"{name} has {arr.shape[1]} labeling-function columns; the model was fitted on {n_lfs}")
    if arr.size:
        low, high = _value_range(arr)
        if low < ABSTAIN:
            raise LabelMatrixError(f"{name} holds {low}; values must be -1 (abstain) or 0..{cardinality - 1}")
        if high >= cardinality:
            raise LabelMatrixError(f"{name} holds {high} but cardinality is {cardinality}; "
                                   f"values must be -1 (abstain) or 0..{cardinality - 1}")
    return arr.astype(np.int64, copy=False)


def _value_range(arr: np.ndarray) -> tuple[int, int]:
    """Smallest and largest value, block of rows by block: the max reads each block from cache
    right after the min read it from memory (one pass over a tall matrix instead of two)."""
    block = max(1, _RANGE_CELLS // arr.shape[1])
    ranges = [(part.min(), part.max()) for part in (arr[i:i + block] for i in range(0, arr.shape[0], block))]
    return int(min(low for low, _ in ranges)), int(max(high for _, high in ranges))


def check_labels(y, cardinality: int, *, n_rows: int | None = None, name: str = "y") -> np.ndarray:
    """Return gold labels `y` as int64 after checking shape and range (no abstain allowed)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise LabelMatrixError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise LabelMatrixError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise LabelMatrixError(f"{name} has {arr.shape[0]} labels but there are {n_rows} rows")
    if arr.size and (arr.min() < 0 or arr.max() >= cardinality):
        raise LabelMatrixError(f"{name} must hold class ids 0..{cardinality - 1}, got range "
                               f"[{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64, copy=False)


def check_probabilities(probs, *, name: str = "probs") -> np.ndarray:
    arr = np.asarray(probs, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise LabelMatrixError(f"{name} must be 2-D (rows x classes, >= 2 classes), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min(initial=0.0) < 0 or arr.max(initial=0.0) > 1 + 1e-9:
        raise LabelMatrixError(f"{name} must hold finite probabilities in [0, 1]")
    return arr


def check_class_prior(prior, cardinality: int, *, name: str = "class_balance") -> np.ndarray:
    arr = np.asarray(prior, dtype=float)
    if arr.shape != (cardinality,):
        raise LabelMatrixError(f"{name} must have {cardinality} entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise LabelMatrixError(f"{name} entries must be positive, got {arr.tolist()}")
    return arr / arr.sum()


def vote_counts(L: np.ndarray, cardinality: int, weights: np.ndarray | None = None) -> np.ndarray:
    """n x k (weighted) count of votes per class."""
    lf_weights = np.ones(L.shape[1]) if weights is None else np.asarray(weights, dtype=float)
    # row (j*k + c) of the one-hot's weight matrix carries LF j's weight into column c
    per_code = (lf_weights[:, None, None] * np.eye(cardinality)[None]).reshape(-1, cardinality)
    return np.asarray(vote_matrix(L, cardinality) @ per_code)
