"""Redundant LFs: pairs whose votes nearly coincide add nothing but double counting for the label model."""
from __future__ import annotations

import networkx as nx
import numpy as np
from scipy import sparse

from lfagent.scoring.checks import check_label_matrix, check_names

CHUNK_ROWS = 8192
DENSE_ABOVE = 0.05  # vote density above which dense BLAS beats sparse products


def vote_agreement(L: np.ndarray, cardinality: int) -> np.ndarray:
    """m x m counts: rows where LFs a and b both vote, and vote the same class (diagonal = votes)."""
    n, m = L.shape
    agree = np.zeros((m, m), dtype=np.int64)
    for c in range(cardinality):
        rows, cols = np.nonzero(L == c)
        if rows.size == 0:
            continue
        if rows.size > DENSE_ABOVE * n * m:
            agree += _dense_gram(L, c)
        else:
            votes_c = sparse.csr_matrix((np.ones(rows.size, dtype=np.int64), (rows, cols)), shape=(n, m))
            agree += (votes_c.T @ votes_c).toarray()
    return agree


def _dense_gram(L: np.ndarray, c: int) -> np.ndarray:
    total = np.zeros((L.shape[1], L.shape[1]), dtype=np.int64)
    for start in range(0, L.shape[0], CHUNK_ROWS):
        block = (L[start:start + CHUNK_ROWS] == c).astype(np.float32)
        # float32 counts are exact below 2**24 rows per chunk.
        total += np.rint(block.T @ block).astype(np.int64)
    return total


def vote_jaccard(L, cardinality: int | None = None) -> np.ndarray:
    """m x m Jaccard similarity of the LFs' (row, vote) sets; 0 where neither ever votes.

    Two LFs that vote the same class on the same rows score 1; disagreeing on a row counts against
    them like voting alone there.
    """
    L = np.asarray(L)
    if cardinality is None:
        cardinality = int(L.max()) + 1 if L.size else 1
    L = check_label_matrix(L, cardinality)
    agree = vote_agreement(L, cardinality)
    votes = np.diag(agree)
    union = votes[:, None] + votes[None, :] - agree
    return np.where(union > 0, agree / np.where(union > 0, union, 1), 0.0)


def redundancy_graph(L, names, *, threshold: float = 0.9, cardinality: int | None = None) -> nx.Graph:
    """Graph with a node per LF and an edge (attribute `jaccard`) where two LFs' votes nearly coincide.

    Two LFs are joined when the Jaccard similarity of their (row, vote) sets is >= `threshold`.
    """
    L = np.asarray(L)
    names = check_names(names, L.shape[1] if L.ndim == 2 else 0)
    similarity = vote_jaccard(L, cardinality)
    graph = nx.Graph()
    graph.add_nodes_from(names)
    first, second = np.nonzero(np.triu(similarity >= threshold, k=1))
    graph.add_edges_from((names[a], names[b], {"jaccard": float(similarity[a, b])})
                         for a, b in zip(first, second))
    return graph


def quality_order(stats) -> list:
    """Stats best first: highest ci_low, then higher coverage, then shorter name, then alphabetical.

    Ties never fall to column order, so selection does not depend on how the LFs are ordered.
    """
    return sorted(stats, key=lambda stat: (-stat.ci_low, -stat.coverage, len(stat.name), stat.name))


def redundant_with(stats, graph: nx.Graph) -> dict[str, tuple[str, float]]:
    """Which LFs to drop as redundant: {dropped name: (the kept LF it duplicates, their Jaccard)}.

    Walks the LFs best first and keeps one unless it is joined to an LF already kept. In a group of
    duplicates (a clique) this keeps exactly the best; in a chain a-b-c where a and c are not alike,
    both a and c survive, which a plain connected-components rule would lose.
    """
    kept: set[str] = set()
    dropped: dict[str, tuple[str, float]] = {}
    for stat in quality_order(stats):
        twins = [(graph.edges[stat.name, other]["jaccard"], other)
                 for other in graph.neighbors(stat.name) if other in kept] if stat.name in graph else []
        if twins:
            jaccard, twin = max(twins, key=lambda pair: (pair[0], -len(pair[1]), pair[1]))
            dropped[stat.name] = (twin, jaccard)
        else:
            kept.add(stat.name)
    return dropped


def prune_redundant(stats, graph: nx.Graph) -> list[str]:
    """Names to keep, in the order of `stats`: the best LF of each group of near-duplicates."""
    dropped = redundant_with(stats, graph)
    return [stat.name for stat in stats if stat.name not in dropped]
