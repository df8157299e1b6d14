"""Sufficient statistics of a label matrix, built from each row's few votes (no dense one-hot).

A label matrix `L` (n x m, -1 = abstain) is encoded by the column codes j*k + c of the votes cast,
row by row (a CSR layout without the values). From it:

- `covote_counts`: the (m*k) x (m*k) co-vote counts S^T S of the one-hot vote matrix S, counted
  over the pairs of votes each row casts: n * r^2 work for r votes per row, against n * (m*k)^2
  for the dense product Snorkel forms.
- `distinct_rows`: the distinct vote patterns with their counts, keyed by exact integer codes of
  the rows (sorting 64-bit keys, not rows of bytes).
- `vote_matrix`: the sparse one-hot S itself, assembled straight from the codes.

A fit that needs several of these (`LabelModel` with dev labels fits metal and Dawid-Skene) encodes
the matrix once as `Votes` and passes that instead of `L`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

# cells (rows x LFs) per block of rows: small enough that a block's votes stay in cache while
# its pairs are counted (twice as fast as blocks 16 times larger), large enough to amortise the loop
_BLOCK_CELLS = 1 << 20
# above this many code pairs the dense bincount table would be too large: use a sparse product
_MAX_TABLE = 1 << 24
# cells per block when encoding votes: the block's temporaries stay in cache instead of streaming
# through memory
_ENCODE_CELLS = 1 << 18
# rows looked at to judge whether deduplicating a tall matrix pays
_SAMPLE_ROWS = 1 << 14


def vote_columns(L: np.ndarray, cardinality: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, cols): row i's votes are cols[indptr[i]:indptr[i+1]], code j*k + c, ascending in j."""
    n, m = L.shape
    code = np.int32 if m * cardinality < 2**31 else np.int64
    parts, per_row = [], np.zeros(n, dtype=np.int64)
    block = max(1, _ENCODE_CELLS // m)
    for start in range(0, n, block):
        block_cols, per_row[start:start + block] = _encode_block(L[start:start + block], cardinality, code)
        parts.append(block_cols)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    return indptr, np.concatenate(parts) if parts else np.zeros(0, dtype=code)


def _encode_block(L: np.ndarray, k: int, code: type) -> tuple[np.ndarray, np.ndarray]:
    """The vote codes of a block of rows and each row's number of votes."""
    m = L.shape[1]
    small = L.astype(np.int8 if k < 128 else np.int64)  # fewer bytes to scan
    flat = np.flatnonzero(small >= 0).astype(np.int32)  # row-major: each row's votes come out in LF order
    rows = flat // np.int32(m)
    cols = (flat - rows * np.int32(m)).astype(code) * code(k) + small.ravel()[flat]
    return cols.astype(code, copy=False), np.bincount(rows, minlength=L.shape[0])


@dataclass(frozen=True)
class Votes:
    """A checked label matrix encoded once: row i cast the votes cols[indptr[i]:indptr[i+1]].

    A vote of LF j for class c has code j*k + c; each row's codes ascend in j.
    """

    indptr: np.ndarray
    cols: np.ndarray
    n_lfs: int
    cardinality: int

    @classmethod
    def from_matrix(cls, L: np.ndarray, cardinality: int) -> "Votes":
        indptr, cols = vote_columns(L, cardinality)
        return cls(indptr, cols, L.shape[1], cardinality)

    @property
    def n_rows(self) -> int:
        return self.indptr.shape[0] - 1

    def per_row(self) -> np.ndarray:
        return np.diff(self.indptr)

    @cached_property
    def code_counts(self) -> np.ndarray:
        """How many votes each code j*k + c got (whole numbers as floats); metal and Dawid-Skene both need them."""
        return np.bincount(self.cols, minlength=self.n_lfs * self.cardinality).astype(float)

    def rows(self, start: int, stop: int) -> "Votes":
        """Rows start..stop-1 (views of the codes, no copy)."""
        stop = min(stop, self.n_rows)
        indptr = self.indptr[start:stop + 1]
        return Votes(indptr - indptr[0], self.cols[indptr[0]:indptr[-1]], self.n_lfs, self.cardinality)

    def take(self, index: np.ndarray) -> "Votes":
        """The rows `index`, in that order."""
        counts = self.per_row()[index]
        indptr = np.zeros(index.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        positions = np.repeat(self.indptr[index] - indptr[:-1], counts) + np.arange(indptr[-1])
        return Votes(indptr, self.cols[positions], self.n_lfs, self.cardinality)

    def stack(self, other: "Votes") -> "Votes":
        """These rows followed by `other`'s (same LFs and classes)."""
        indptr = np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]])
        return Votes(indptr, np.concatenate([self.cols, other.cols]), self.n_lfs, self.cardinality)

    def one_hot(self) -> sp.csr_matrix:
        """Sparse n x (m*k) one-hot of the votes: column j*k + c is 1 where LF j voted c."""
        shape = (self.n_rows, self.n_lfs * self.cardinality)
        return sp.csr_matrix((np.ones(self.cols.shape[0]), self.cols, self.indptr), shape=shape)


def as_votes(L: np.ndarray | Votes, cardinality: int) -> Votes:
    """`L` encoded as `Votes` (passed through if it already is)."""
    return L if isinstance(L, Votes) else Votes.from_matrix(L, cardinality)


def vote_matrix(L: np.ndarray | Votes, cardinality: int) -> sp.csr_matrix:
    """Sparse n x (m*k) one-hot of the votes: column j*k + c is 1 where LF j voted c."""
    return as_votes(L, cardinality).one_hot()


def covote_counts(L: np.ndarray | Votes, cardinality: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(m*k) x (m*k) matrix S^T diag(weights) S: how often (LF j votes a) and (LF j' votes b) co-occur.

    The diagonal holds each (LF, class) vote count. Equal to the dense product of the one-hot vote
    matrix with itself, counted over each row's pairs of votes instead.
    """
    votes = as_votes(L, cardinality)
    n, m = votes.n_rows, votes.n_lfs
    d = m * cardinality
    if d * d > _MAX_TABLE:
        S = votes.one_hot()
        weighted = S if weights is None else S.multiply(np.asarray(weights, dtype=float)[:, None]).tocsr()
        return np.asarray((S.T @ weighted).toarray(), dtype=float)
    upper = np.zeros(d * d)
    block = max(1, _BLOCK_CELLS // m)
    for start in range(0, n, block):
        block_weights = None if weights is None else np.asarray(weights[start:start + block], dtype=float)
        upper += _block_pair_counts(votes.rows(start, start + block), block_weights)
    if weights is None:
        diagonal = votes.code_counts
    else:
        vote_weights = np.repeat(np.asarray(weights, dtype=float), votes.per_row())
        diagonal = np.bincount(votes.cols, weights=vote_weights, minlength=d)
    counts = upper.reshape(d, d)
    counts = counts + counts.T  # pairs were counted once, lower LF first
    counts[np.diag_indices(d)] += diagonal
    return counts


def _block_pair_counts(votes: Votes, weights: np.ndarray | None) -> np.ndarray:
    """Pair counts (flattened d x d, only j < j') of one block of rows."""
    d = votes.n_lfs * votes.cardinality
    cols = votes.cols.astype(np.int32, copy=False)
    per_row = votes.per_row()
    upper = np.zeros(d * d)
    if cols.shape[0] == 0:
        return upper
    # rows with the most votes first (a stable radix sort on small ints), their codes laid out by
    # position: the rows casting a q-th vote are then a prefix, and all pairs (p < q) of those rows
    # are one contiguous sum instead of a gather per pair
    small = np.uint8 if votes.n_lfs < 256 else np.uint16
    order = np.argsort((per_row.max() - per_row).astype(small), kind="stable")
    casting = np.cumsum(np.bincount(per_row)[::-1])[::-1][1:]  # casting[q] = rows with a q-th vote (from 0)
    starts = votes.indptr[order]
    by_position = np.empty((casting.shape[0], order.shape[0]), dtype=np.int32)
    for q, count in enumerate(casting):
        by_position[q, :count] = cols[starts[:count] + q]
    first_codes = by_position * np.int32(d)
    row_weights = None if weights is None else np.asarray(weights, dtype=float)[order]
    for q in range(1, casting.shape[0]):
        count = casting[q]
        pair_codes = first_codes[:q, :count] + by_position[q, :count]
        pair_weights = None if row_weights is None else np.broadcast_to(row_weights[:count], (q, count)).ravel()
        upper += np.bincount(pair_codes.ravel(), weights=pair_weights, minlength=d * d)
    return upper


def _row_keys(votes: Votes) -> list[np.ndarray]:
    """Exact uint64 keys per row: the rows' outcomes (value + 1, abstain 0) read as base-(k+1)
    numbers, in chunks of LFs. Built from the votes alone, so sparse rows cost little."""
    m, k = votes.n_lfs, votes.cardinality
    lfs = votes.cols // k
    digits = (votes.cols - lfs * k + 1).astype(np.uint64)
    base = int(digits.max(initial=1)) + 1
    per_key = max(1, int(64 // np.log2(base)) - 1)  # base ** per_key stays below 2**64
    chunk_of_lf = np.arange(m) // per_key
    chunk_end = np.minimum((chunk_of_lf + 1) * per_key, m)
    place = np.array([base ** int(e - 1 - j) for j, e in enumerate(chunk_end)], dtype=np.uint64)
    worth = digits * place[lfs]
    chunk_of_vote = chunk_of_lf[lfs]
    keys = []
    for chunk in range(int(chunk_of_lf[-1]) + 1):
        # a row's key is the sum of its votes' worth: differences of a running sum (wrapping
        # uint64 arithmetic is exact modulo 2**64, and every key is below 2**64)
        running = np.zeros(worth.shape[0] + 1, dtype=np.uint64)
        np.cumsum(np.where(chunk_of_vote == chunk, worth, np.uint64(0)), out=running[1:])
        keys.append(running[votes.indptr[1:]] - running[votes.indptr[:-1]])
    return keys


def _sorted_groups(keys: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order, starts, inverse, counts): rows sorted by key, where each group of equal rows starts
    in that order, each row's group and each group's size."""
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
    return order, starts, inverse, counts


def distinct_rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of `L`, the index of each row's distinct row, and each distinct row's count.

    Distinct rows come in the order of their keys (not of first appearance).
    """
    n = L.shape[0]
    if n == 0:
        return L, np.zeros(0, dtype=np.int64), np.zeros(0)
    # any cardinality above the largest value encodes the rows faithfully
    votes = Votes.from_matrix(L, max(int(L.max()) + 1, 2))
    order, starts, inverse, counts = _sorted_groups(_row_keys(votes), n)
    return L[order[starts]], inverse, counts


def distinct_votes(votes: Votes) -> tuple[Votes, np.ndarray, np.ndarray]:
    """`distinct_rows` for rows given as `Votes` (same distinct rows, in the same order)."""
    n = votes.n_rows
    if n == 0:
        return votes, np.zeros(0, dtype=np.int64), np.zeros(0)
    order, starts, inverse, counts = _sorted_groups(_row_keys(votes), n)
    return votes.take(order[starts]), inverse, counts


def row_reduce(ufunc: np.ufunc, X: np.ndarray) -> np.ndarray:
    """`ufunc` folded across each row of the n x k array `X`, as an n x 1 column.

    A loop over the k columns: numpy's own axis=1 reduction is several times slower on tall, narrow
    arrays. The order of operations (left to right) is numpy's for k < 8, so results are identical.
    """
    out = X[:, :1].copy()
    for c in range(1, X.shape[1]):
        ufunc(out, X[:, c:c + 1], out=out)
    return out


def vote_patterns(L: np.ndarray | Votes, cardinality: int) -> tuple[Votes, np.ndarray, np.ndarray]:
    """The distinct rows as `Votes` (see `distinct_votes`), or every row (each its own pattern) when
    few rows repeat.

    Sparse LFs leave a tall matrix with few distinct rows, and fitting or predicting per pattern is
    then far cheaper; when most rows are distinct, finding them costs more than it saves. A strided
    sample decides, so the choice is deterministic; either way the results are the same.
    """
    votes = as_votes(L, cardinality)
    n = votes.n_rows
    if n > 4 * _SAMPLE_ROWS:
        sample = votes.take(np.arange(0, n, n // _SAMPLE_ROWS))
        if distinct_votes(sample)[2].shape[0] > 0.5 * sample.n_rows:
            return votes, np.arange(n), np.ones(n)
    return distinct_votes(votes)
