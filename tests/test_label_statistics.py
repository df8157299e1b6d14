"""Sufficient statistics of label matrices (lfagent.fit.statistics) against dense computations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from lfagent.fit import LabelModel
from lfagent.fit import statistics
from lfagent.fit.statistics import (
    Votes, as_votes, covote_counts, distinct_rows, distinct_votes, row_reduce, vote_matrix, vote_patterns,
)

from synthetic import make_label_matrix

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

label_matrices = st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.just(k), arrays(np.int64, st.tuples(st.integers(0, 60), st.integers(1, 7)),
                       elements=st.integers(-1, k - 1))))


def dense_one_hot(L: np.ndarray, k: int) -> np.ndarray:
    """The straightforward n x (m*k) one-hot: column j*k + c is 1 where LF j voted c."""
    n, m = L.shape
    S = np.zeros((n, m * k))
    for j in range(m):
        for c in range(k):
            S[:, j * k + c] = L[:, j] == c
    return S


@settings(max_examples=60, deadline=None)
@given(label_matrices, st.integers(0, 2**32 - 1))
def test_covote_counts_equal_the_dense_one_hot_product(case, seed):
    k, L = case
    S = dense_one_hot(L, k)
    np.testing.assert_array_equal(covote_counts(L, k), S.T @ S)
    weights = np.random.default_rng(seed).integers(1, 5, L.shape[0]).astype(float)
    np.testing.assert_allclose(covote_counts(L, k, weights), S.T @ (S * weights[:, None]), rtol=1e-12)
    np.testing.assert_array_equal(vote_matrix(L, k).toarray(), S)


@settings(max_examples=20, deadline=None)
@given(label_matrices)
def test_covote_counts_agree_across_row_blocks_and_the_sparse_fallback(case):
    k, L = case
    expected = dense_one_hot(L, k).T @ dense_one_hot(L, k)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(statistics, "_BLOCK_CELLS", 20)  # blocks of a few rows
        np.testing.assert_array_equal(covote_counts(L, k), expected)
        patch.setattr(statistics, "_MAX_TABLE", 1)  # the scipy product path
        np.testing.assert_array_equal(covote_counts(L, k), expected)


@settings(max_examples=40, deadline=None)
@given(label_matrices, st.integers(0, 2**32 - 1))
def test_votes_slices_selections_and_stacks_match_the_matrix(case, seed):
    k, L = case
    rng = np.random.default_rng(seed)
    votes = Votes.from_matrix(L, k)
    np.testing.assert_array_equal(votes.one_hot().toarray(), dense_one_hot(L, k))
    start, stop = sorted(rng.integers(0, L.shape[0] + 1, 2))
    np.testing.assert_array_equal(votes.rows(start, stop).one_hot().toarray(), dense_one_hot(L[start:stop], k))
    index = rng.integers(0, max(L.shape[0], 1), L.shape[0]) if L.shape[0] else np.zeros(0, dtype=int)
    np.testing.assert_array_equal(votes.take(index).one_hot().toarray(), dense_one_hot(L[index], k))
    stacked = votes.stack(Votes.from_matrix(L[::-1], k))
    np.testing.assert_array_equal(stacked.one_hot().toarray(), dense_one_hot(np.vstack([L, L[::-1]]), k))
    np.testing.assert_array_equal(votes.code_counts, dense_one_hot(L, k).sum(axis=0))


@settings(max_examples=40, deadline=None)
@given(label_matrices)
def test_distinct_votes_are_distinct_rows_in_the_same_order(case):
    k, L = case
    unique, inverse, counts = distinct_rows(L)
    patterns, votes_inverse, votes_counts = distinct_votes(Votes.from_matrix(L, k))
    np.testing.assert_array_equal(patterns.one_hot().toarray(), dense_one_hot(unique, k))
    np.testing.assert_array_equal(votes_inverse, inverse)
    np.testing.assert_array_equal(votes_counts, counts)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_dawid_skene_class_pair_products_equal_real_products_to_the_bit(k):
    # the EM's sums must run as they did on n x k arrays, or the fit would drift from the old one
    from lfagent.fit.dawid_skene import _OneHot

    rng = np.random.default_rng(k)
    L = rng.integers(-1, k, (5000, 12))
    S = vote_matrix(L, k)
    products = _OneHot(Votes.from_matrix(L, k))
    gains = rng.normal(size=(S.shape[1], k))
    np.testing.assert_array_equal(products.times(gains), np.asarray(S @ gains).T)
    posteriors = rng.random((L.shape[0], k))
    votes, totals = products.transposed_times(np.ascontiguousarray(posteriors.T))
    np.testing.assert_array_equal(votes, np.asarray(S.T @ posteriors))
    np.testing.assert_array_equal(totals, posteriors.sum(axis=0))


@settings(max_examples=30, deadline=None)
@given(label_matrices, st.integers(0, 2**32 - 1))
def test_covote_counts_follow_a_permutation_of_lf_columns(case, seed):
    k, L = case
    perm = np.random.default_rng(seed).permutation(L.shape[1])
    code_perm = (perm[:, None] * k + np.arange(k)[None, :]).ravel()  # column j*k + c moves with LF j
    np.testing.assert_array_equal(covote_counts(L[:, perm], k), covote_counts(L, k)[np.ix_(code_perm, code_perm)])


@settings(max_examples=60, deadline=None)
@given(label_matrices)
def test_distinct_rows_partition_the_rows(case):
    _, L = case
    unique, inverse, counts = distinct_rows(L)
    np.testing.assert_array_equal(unique[inverse], L)
    assert counts.sum() == L.shape[0]
    np.testing.assert_array_equal(counts, np.bincount(inverse, minlength=unique.shape[0]))
    assert len(unique) == (len(np.unique(L, axis=0)) if L.shape[0] else 0)


@pytest.mark.parametrize("k, m", [(2, 45), (3, 90), (300, 4)])
def test_distinct_rows_on_wide_matrices_and_many_classes(k, m):
    # 45 binary LFs or 90 ternary ones need several 64-bit keys per row; 300 classes a wider dtype
    rng = np.random.default_rng(0)
    base = rng.integers(-1, k, (30, m))
    L = base[rng.integers(0, 30, 500)]
    L[7, -1] = (L[7, -1] + 1) % k  # differs from its twin in the last LF only
    unique, inverse, counts = distinct_rows(L)
    np.testing.assert_array_equal(unique[inverse], L)
    assert len(unique) == len(np.unique(L, axis=0))


def test_vote_patterns_skips_deduplication_only_when_rows_rarely_repeat():
    rng = np.random.default_rng(1)
    many = rng.integers(-1, 2, (80_000, 30))  # nearly every row distinct
    votes = Votes.from_matrix(many, 2)
    rows, inverse, counts = vote_patterns(votes, 2)
    assert rows is votes and np.array_equal(inverse, np.arange(len(many))) and counts.sum() == len(many)
    few = many[rng.integers(0, 50, 80_000)]
    rows, inverse, counts = vote_patterns(few, 2)
    assert rows.n_rows <= 50
    np.testing.assert_array_equal(rows.one_hot().toarray()[inverse], dense_one_hot(few, 2))


def test_row_reduce_matches_numpy():
    X = np.random.default_rng(2).normal(size=(1000, 6))
    np.testing.assert_array_equal(row_reduce(np.maximum, X), X.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(row_reduce(np.add, X), X.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("method", ["dawid_skene", "metal"])
def test_fit_on_distinct_patterns_equals_fit_on_every_row(method):
    data = make_label_matrix(70_000, [0.9, 0.8, 0.7, 0.6], [0.05, 0.1, 0.02, 0.08], cardinality=3, seed=3)
    deduplicated = LabelModel(3, method).fit(data.L, seed=0).predict_proba(data.L)
    with pytest.MonkeyPatch.context() as patch:
        from lfagent.fit import dawid_skene
        every_row_patterns = lambda L, k: (as_votes(L, k), np.arange(L.n_rows), np.ones(L.n_rows))
        patch.setattr(dawid_skene, "vote_patterns", every_row_patterns)
        every_row = LabelModel(3, method).fit(data.L, seed=0).predict_proba(data.L)
    np.testing.assert_allclose(deduplicated, every_row, atol=1e-9)
    np.testing.assert_allclose(deduplicated.sum(axis=1), 1.0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["dawid_skene", "metal", "auto"]))
def test_tall_sparse_matrices_give_distributions_invariant_to_lf_order(seed, method):
    rng = np.random.default_rng(seed)
    data = make_label_matrix(3000, rng.uniform(0.5, 0.95, 8), rng.uniform(0.01, 0.3, 8), cardinality=2, seed=seed)
    perm = rng.permutation(8)
    dev = {"L_dev": data.L[:100], "y_dev": data.y[:100]} if method == "auto" else {}
    dev_perm = {"L_dev": data.L[:100, perm], "y_dev": data.y[:100]} if method == "auto" else {}
    P = LabelModel(2, method).fit(data.L, seed=0, **dev).predict_proba(data.L)
    P_perm = LabelModel(2, method).fit(data.L[:, perm], seed=0, **dev_perm).predict_proba(data.L[:, perm])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(P, P_perm, atol=1e-6)


@pytest.mark.skipif(not (DATA / "wrench-trec").exists(), reason="WRENCH data not present")
@pytest.mark.parametrize("name, k", [("youtube", 2), ("trec", 6)])
def test_overlaps_on_wrench_equal_the_dense_product(name, k):
    rows = json.loads((DATA / f"wrench-{name}" / "train.json").read_text()).values()
    L = np.array([r["weak_labels"] for r in rows], dtype=np.int64)
    S = dense_one_hot(L, k)
    np.testing.assert_array_equal(covote_counts(L, k), S.T @ S)
