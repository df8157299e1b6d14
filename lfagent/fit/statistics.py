"""Sufficient statistics of a label matrix, built from each row's few votes (no dense one-hot).

A label matrix `L` (n x m, -1 = abstain) is encoded by the column codes j*k + c of the votes cast,
row by row (a CSR layout without the values). From it:

- `covote_counts`: the (m*k) x (m*k) co-vote counts S^T S of the one-hot vote matrix S, counted
  over the pairs of votes each row casts: n * r^2 work for r votes per row, against n * (m*k)^2
  for the dense product Snorkel forms.
- `distinct_rows`: the distinct vote patterns with their counts, keyed by exact integer codes of
  the rows (sorting 64-bit keys, not rows of bytes).
- `vote_matrix`: the sparse one-hot S itself, assembled straight from the codes.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# cells (rows x LFs) per block of rows: small enough that a block's votes stay in cache while
# its pairs are counted (twice as fast as blocks 16 times larger), large enough to amortise the loop
_BLOCK_CELLS = 1 << 20
# above this many code pairs the dense bincount table would be too large: use a sparse product
_MAX_TABLE = 1 << 24
# rows looked at to judge whether deduplicating a tall matrix pays
_SAMPLE_ROWS = 1 << 14


def vote_columns(L: np.ndarray, cardinality: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, cols): row i's votes are cols[indptr[i]:indptr[i+1]], code j*k + c, ascending in j."""
    n, m = L.shape
    small = np.ascontiguousarray(L, dtype=np.int8 if cardinality < 128 else np.int64)  # fewer bytes to scan
    flat = np.flatnonzero(small >= 0)  # row-major: each row's votes come out in LF order
    rows = flat // m
    cols = (flat - rows * m) * cardinality + small.ravel()[flat]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols


def vote_matrix(L: np.ndarray, cardinality: int) -> sp.csr_matrix:
    """Sparse n x (m*k) one-hot of the votes: column j*k + c is 1 where LF j voted c."""
    indptr, cols = vote_columns(L, cardinality)
    shape = (L.shape[0], L.shape[1] * cardinality)
    return sp.csr_matrix((np.ones(cols.shape[0]), cols, indptr), shape=shape)


def covote_counts(L: np.ndarray, cardinality: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(m*k) x (m*k) matrix S^T diag(weights) S: how often (LF j votes a) and (LF j' votes b) co-occur.

    The diagonal holds each (LF, class) vote count. Equal to the dense product of the one-hot vote
    matrix with itself, counted over each row's pairs of votes instead.
    """
    n, m = L.shape
    d = m * cardinality
    if d * d > _MAX_TABLE:
        S = vote_matrix(L, cardinality)
        weighted = S if weights is None else S.multiply(np.asarray(weights, dtype=float)[:, None]).tocsr()
        return np.asarray((S.T @ weighted).toarray(), dtype=float)
    upper = np.zeros(d * d)
    diagonal = np.zeros(d)
    block = max(1, _BLOCK_CELLS // m)
    for start in range(0, n, block):
        block_weights = None if weights is None else np.asarray(weights[start:start + block], dtype=float)
        block_upper, block_diagonal = _block_counts(L[start:start + block], cardinality, block_weights)
        upper += block_upper
        diagonal += block_diagonal
    counts = upper.reshape(d, d)
    counts = counts + counts.T  # pairs were counted once, lower LF first
    counts[np.diag_indices(d)] += diagonal
    return counts


def _block_counts(L: np.ndarray, k: int, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts (flattened d x d, only j < j') and vote counts of one block of rows."""
    d = L.shape[1] * k
    indptr, cols = vote_columns(L, k)
    cols = cols.astype(np.int32)
    per_row = np.diff(indptr)
    vote_weights = None if weights is None else np.repeat(weights, per_row)
    diagonal = np.bincount(cols, weights=vote_weights, minlength=d).astype(float)
    upper = np.zeros(d * d)
    if cols.shape[0] == 0:
        return upper, diagonal
    # how many votes follow each vote in its own row; vote p pairs with p + offset for offset <= that
    remaining = (np.repeat(indptr[1:], per_row) - np.arange(1, cols.shape[0] + 1)).astype(np.int32)
    # votes with the most followers first (a stable radix sort on small ints), so each offset's
    # pairs start from a prefix of this order
    small = np.uint8 if L.shape[1] < 256 else np.uint16
    order = np.argsort((remaining.max() - remaining).astype(small), kind="stable").astype(np.int32)
    at_least = np.cumsum(np.bincount(remaining)[::-1])[::-1]  # at_least[o] = votes with >= o followers
    first_codes = cols[order] * np.int32(d)
    first_weights = None if vote_weights is None else vote_weights[order]
    for offset in range(1, at_least.shape[0]):
        count = at_least[offset]
        pair_codes = first_codes[:count] + cols[order[:count] + offset]
        pair_weights = None if first_weights is None else first_weights[:count]
        upper += np.bincount(pair_codes, weights=pair_weights, minlength=d * d)
    return upper, diagonal


def _row_keys(L: np.ndarray) -> list[np.ndarray]:
    """Exact uint64 keys per row: the rows' outcomes (value + 1) read as base-(k+1) numbers, in chunks of LFs."""
    n, m = L.shape
    base = int(L.max(initial=0)) + 2
    per_key = max(1, int(64 // np.log2(base)) - 1)  # base ** per_key stays below 2**64
    if base <= 128:  # outcomes 0..k in a narrow copy rather than a full-width temporary
        small = L.astype(np.int8)
        small += 1
        small = small.view(np.uint8)
    else:
        small = (L + 1).astype(np.uint32)
    columns = np.ascontiguousarray(small.T)  # one contiguous pass per LF
    keys = []
    for first in range(0, m, per_key):
        key = np.zeros(n, dtype=np.uint64)
        for j in range(first, min(first + per_key, m)):
            key *= np.uint64(base)
            key += columns[j]
        keys.append(key)
    return keys


def distinct_rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of `L`, the index of each row's distinct row, and each distinct row's count.

    Distinct rows come in the order of their keys (not of first appearance).
    """
    n = L.shape[0]
    if n == 0:
        return L, np.zeros(0, dtype=np.int64), np.zeros(0)
    keys = _row_keys(L)
    order = np.argsort(keys[0], kind="stable") if len(keys) == 1 else np.lexsort(keys[::-1])
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = False
    for key in keys:
        ordered = key[order]
        new_group[1:] |= ordered[1:] != ordered[:-1]
    group_of_sorted = np.cumsum(new_group) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group_of_sorted
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n)).astype(float)
    return L[order[starts]], inverse, counts


def row_reduce(ufunc: np.ufunc, X: np.ndarray) -> np.ndarray:
    """`ufunc` folded across each row of the n x k array `X`, as an n x 1 column.

    A loop over the k columns: numpy's own axis=1 reduction is several times slower on tall, narrow
    arrays. The order of operations (left to right) is numpy's for k < 8, so results are identical.
    """
    out = X[:, :1].copy()
    for c in range(1, X.shape[1]):
        ufunc(out, X[:, c:c + 1], out=out)
    return out


def vote_patterns(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like `distinct_rows`, but returns `L` itself (each row its own pattern) when few rows repeat.

    Sparse LFs leave a tall matrix with few distinct rows, and fitting or predicting per pattern is
    then far cheaper; when most rows are distinct, finding them costs more than it saves. A strided
    sample decides, so the choice is deterministic; either way the results are the same.
    """
    n = L.shape[0]
    if n > 4 * _SAMPLE_ROWS:
        sample = L[:: n // _SAMPLE_ROWS]
        if distinct_rows(sample)[0].shape[0] > 0.5 * sample.shape[0]:
            return L, np.arange(n), np.ones(n)
    return distinct_rows(L)
