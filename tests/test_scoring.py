"""Scoring: stats on hand-built matrices with known answers, redundancy, selection, invariants."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lfagent.errors import InputError
from lfagent.scoring import (format_table, lf_stats, lf_summary_table, prune_redundant,
                             redundancy_graph, seed_errors, select_lfs, vote_jaccard, wilson_interval,
                             wilson_intervals)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def by_name(stats):
    return {s.name: s for s in stats}


# ---------------------------------------------------------------- Wilson intervals

def test_wilson_matches_textbook_value():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)


def test_wilson_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.4 < high < 0.5  # textbook 0/5 -> (0, 0.434)
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.5 < low < 0.6
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_wilson_vectorised_agrees_with_scalar():
    successes, trials = np.array([0, 3, 8, 50, 0]), np.array([4, 7, 10, 60, 0])
    low, high = wilson_intervals(successes, trials)
    for s, n, lo, hi in zip(successes, trials, low, high):
        assert (lo, hi) == pytest.approx(wilson_interval(int(s), int(n)))


# ---------------------------------------------------------------- lf_stats on a known matrix

# Unlabeled rows (4 LFs):            a   b   c   d
L_UNL = np.array([[1, 1, -1, -1],   # a, b agree
                  [1, -1, 0, -1],   # a, c conflict
                  [-1, -1, 0, 0],   # c, d agree
                  [1, -1, -1, -1],  # a alone
                  [-1, -1, -1, -1],  # nobody
                  [-1, 1, 0, 1]])  # b, c, d: three votes, two classes
L_SEED = np.array([[1, -1, 0, 0],
                   [1, 1, -1, -1],
                   [1, -1, 0, 0],
                   [-1, -1, 0, 1]])
Y_SEED = np.array([1, 1, 0, 0])
NAMES = ["a", "b", "c", "d"]


def known_stats():
    return by_name(lf_stats(L_SEED, Y_SEED, L_UNL, cardinality=2, names=NAMES))


def test_coverage_overlap_conflict():
    stats = known_stats()
    assert stats["a"].coverage == pytest.approx(3 / 6)
    assert stats["a"].overlap == pytest.approx(2 / 6)  # rows 0, 1
    assert stats["a"].conflict == pytest.approx(1 / 6)  # row 1
    assert stats["b"].overlap == pytest.approx(2 / 6) and stats["b"].conflict == pytest.approx(1 / 6)
    assert stats["c"].coverage == pytest.approx(3 / 6)
    assert stats["c"].conflict == pytest.approx(2 / 6)  # rows 1 and 5
    assert stats["d"].overlap == pytest.approx(2 / 6)
    assert stats["d"].conflict == pytest.approx(1 / 6)  # row 5: c votes 0 against its 1


def test_seed_accuracy_interval_chance_and_precision():
    stats = known_stats()
    a = stats["a"]
    assert (a.seed_votes, a.seed_correct, a.seed_accuracy) == (3, 2, pytest.approx(2 / 3))
    assert (a.ci_low, a.ci_high) == pytest.approx(wilson_interval(2, 3))
    assert a.label == 1 and a.polarity == [1] and a.chance == pytest.approx(0.5)
    assert a.seed_coverage == pytest.approx(3 / 4)
    c = stats["c"]
    assert (c.seed_votes, c.seed_correct) == (3, 2)
    assert c.per_class_precision == {0: pytest.approx(2 / 3), 1: None}
    d = stats["d"]  # votes both classes: label -1, per-class precision for each
    assert d.label == -1 and d.polarity == [0, 1]
    assert d.per_class_precision == {0: 0.5, 1: 0.0}


def test_chance_follows_class_prior_and_vote_mix():
    y = np.array([0] * 8 + [1] * 2)  # priors 0.8 / 0.2
    L_seed = np.array([[0, 1, 0 if i % 2 else 1] for i in range(10)])
    stats = lf_stats(L_seed, y, np.empty((0, 3), dtype=int), cardinality=2,
                     names=["zeros", "ones", "mixed"], lf_labels=[0, 1, -1])
    assert [s.chance for s in stats] == pytest.approx([0.8, 0.2, 0.5])  # mixed: half its votes each
    assert all(s.coverage == 0 for s in stats)


def test_no_votes_gives_none_accuracy_and_full_interval():
    stats = lf_stats(np.full((3, 1), -1), [0, 1, 1], np.full((2, 1), -1), cardinality=2,
                     names=["silent"], lf_labels=[1])
    assert stats[0].seed_accuracy is None and (stats[0].ci_low, stats[0].ci_high) == (0.0, 1.0)
    assert stats[0].chance == pytest.approx(2 / 3) and stats[0].polarity == []


def test_multilabel_vote_is_correct_when_class_is_among_the_truth():
    y = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]])  # multi-hot over 3 classes
    L_seed = np.array([[1, 0], [1, 2], [1, -1]])
    stats = lf_stats(L_seed, y, L_seed, cardinality=3, names=["votes1", "any"])
    assert (stats[0].seed_votes, stats[0].seed_correct) == (3, 1)  # only row 0 has class 1
    assert (stats[1].seed_votes, stats[1].seed_correct) == (2, 2)
    assert stats[0].chance == pytest.approx(1 / 3)  # class 1 is in 1 of 3 seed label sets
    assert seed_errors(L_seed, y, 0)[0].tolist() == [1, 2]


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="vote 2"):
        lf_stats([[2]], [0], [[0]], cardinality=2, names=["x"])
    with pytest.raises(InputError, match="unique"):
        lf_stats([[0, 0]], [0], [[0, 0]], cardinality=2, names=["x", "x"])
    with pytest.raises(InputError, match="rows"):
        lf_stats([[0]], [0, 1], [[0]], cardinality=2, names=["x"])
    with pytest.raises(InputError, match="columns"):
        lf_stats([[0]], [0], [[0, 1]], cardinality=2, names=["x"])


# ---------------------------------------------------------------- tables

def test_summary_table_and_text_rendering():
    stats = lf_stats(L_SEED, Y_SEED, L_UNL, cardinality=2, names=NAMES)
    rows = lf_summary_table(stats, ["ham", "spam"])
    assert rows[0]["polarity"] == ["spam"] and rows[0]["correct"] == 2 and rows[0]["incorrect"] == 1
    assert rows[3]["polarity"] == ["ham", "spam"]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["j", "name", "polarity"]
    assert len(lines) == 2 + len(NAMES)
    assert "0.667" in lines[2] and "ham,spam" in lines[5]
    assert format_table([]) == "(no rows)\n"


# ---------------------------------------------------------------- redundancy

def test_vote_jaccard_by_hand():
    L = np.array([[0, 0, 1], [0, 0, -1], [1, -1, 1], [-1, 0, -1]])
    sim = vote_jaccard(L, 2)
    assert sim[0, 1] == pytest.approx(2 / 4)  # shared (0,0),(1,0); union adds (2,1),(3,0)
    assert sim[0, 2] == pytest.approx(1 / 4)  # shared (2,1); row 0 disagreement counts twice
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1)


def test_dense_and_sparse_agreement_paths_match(monkeypatch):
    from lfagent.scoring import redundancy
    rng = np.random.default_rng(0)
    L = np.where(rng.random((300, 6)) < 0.6, rng.integers(0, 3, (300, 6)), -1)
    dense = redundancy.vote_agreement(L, 3)
    monkeypatch.setattr(redundancy, "DENSE_ABOVE", 2.0)  # force the sparse product
    assert np.array_equal(dense, redundancy.vote_agreement(L, 3))


def test_redundancy_graph_joins_duplicates_and_prune_keeps_better():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    good = np.where(rng.random(200) < 0.4, y, -1)
    near_copy = good.copy()
    near_copy[np.flatnonzero(good != -1)[:2]] = -1  # drops two votes: Jaccard ~0.97
    other = np.where(rng.random(200) < 0.4, 1, -1)
    L = np.column_stack([near_copy, good, other])
    names = ["near_copy", "good", "other"]
    graph = redundancy_graph(L, names, threshold=0.9)
    assert set(graph.edges) == {("near_copy", "good")}
    assert graph.edges["near_copy", "good"]["jaccard"] > 0.95
    stats = lf_stats(L[:100], y[:100], L[100:], cardinality=2, names=names)
    assert prune_redundant(stats, graph) == ["good", "other"]  # good covers more at equal accuracy


def test_prune_keeps_both_ends_of_a_chain():
    from types import SimpleNamespace
    import networkx as nx
    graph = nx.Graph()
    graph.add_edge("a", "b", jaccard=0.9)
    graph.add_edge("b", "c", jaccard=0.9)
    stats = [SimpleNamespace(name=n, ci_low=q, coverage=0.1) for n, q in [("a", .7), ("b", .8), ("c", .6)]]
    assert prune_redundant(stats, graph) == ["b"]  # b is best and touches both
    stats[1].ci_low = 0.5
    assert prune_redundant(stats, graph) == ["a", "c"]  # a and c are not alike


# ---------------------------------------------------------------- selection

def planted(n: int = 600, seed: int = 0):
    """Seeds + unlabeled rows with a good LF, a random LF, a duplicate and a silent LF."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = np.where((y == 1) & (rng.random(n) < 0.7), 1, -1)
    random_lf = np.where(rng.random(n) < 0.5, 1, -1)  # votes 1 regardless of truth
    duplicate = good.copy()
    silent = np.full(n, -1)
    ham = np.where((y == 0) & (rng.random(n) < 0.5), 0, -1)
    L = np.column_stack([good, random_lf, duplicate, silent, ham])
    names = ["kw_subscribe", "coin_flip", "kw_subscribe_copy", "never", "short_text"]
    return L[:150], y[:150], L[150:], names


def test_select_keeps_good_drops_random_with_reasons():
    L_seed, y_seed, L_unl, names = planted()
    sel = select_lfs(L_seed, y_seed, L_unl, cardinality=2, names=names)
    assert sel.kept == ["kw_subscribe", "short_text"] and sel.kept_indices == [0, 4]
    reason = sel.dropped["coin_flip"]
    assert reason.startswith("seed accuracy 0.") and "does not beat chance" in reason
    assert sel.dropped["kw_subscribe_copy"] == "redundant with kw_subscribe (1.00 overlap)"
    assert sel.dropped["never"] == "no seed votes (needs >= 3)"
    again = select_lfs(L_seed, y_seed, L_unl, cardinality=2, names=names)
    assert again.model_dump() == sel.model_dump()


def test_vouching_stands_in_for_thin_or_undecided_seed_evidence_only():
    y = np.array([0, 1] * 20)
    L_unl = np.column_stack([np.where(np.arange(60) % 6 == j, 1, -1) for j in range(6)])  # disjoint votes
    L_seed = np.full((40, 6), -1)
    L_seed[1, 0] = 1                                 # thin: one right vote
    L_seed[[1, 0], 1] = 1                            # thin: one right, one wrong
    L_seed[[0, 2], 2] = 1                            # thin and all wrong
    L_seed[[0, 2, 4, 1], 3] = 1                      # enough votes, mostly wrong (1 of 4): the seeds decide
    L_seed[[1, 3, 5, 7, 0], 4] = 1                   # 4 of 5 right: interval [0.38, 0.96] holds chance 0.5
    L_seed[[1, 3, 0, 2], 5] = 1                      # 2 of 4: undecided, but not mostly right
    names = ["one_right", "half", "all_wrong", "judged", "undecided", "even"]
    plain = select_lfs(L_seed, y, L_unl, cardinality=2, names=names)
    assert plain.kept == [] and "does not beat chance 0.50" in plain.dropped["undecided"]
    sel = select_lfs(L_seed, y, L_unl, cardinality=2, names=names, vouched=set(names))
    assert sel.kept == ["one_right", "half", "undecided"]
    assert sel.on_meaning == ["one_right", "half", "undecided"]  # the others are vouched too; the seeds decide
    assert sel.dropped["all_wrong"] == "only 2 seed votes (needs >= 3)"
    assert "not above 1/2" in sel.dropped["judged"] and "not above 1/2" in sel.dropped["even"]


def test_an_llm_keyword_must_reach_the_mined_keyword_bar():
    # A 20% class; the LF votes it on 8 seeds, 5 right: beats chance, yet its smoothed precision
    # (5 + 2 * 0.2) / (8 + 2) = 0.54 is below the miner's 0.6, so as a keyword it is dropped.
    y = np.array([1] * 20 + [0] * 80)
    L_seed = np.full((100, 2), -1)
    L_seed[[0, 1, 2, 3, 4, 20, 21, 22], 0] = 1
    L_seed[[5, 6, 7, 8, 9, 10, 11, 23], 1] = 1   # 7 of 8 right: (7 + 0.4) / 10 = 0.74 passes
    L_unl = np.column_stack([np.where(np.arange(40) % 2 == j, 1, -1) for j in range(2)])
    names = ["weak", "strong"]
    assert select_lfs(L_seed, y, L_unl, cardinality=2, names=names).kept == ["weak", "strong"]
    sel = select_lfs(L_seed, y, L_unl, cardinality=2, names=names, keywords={"weak", "strong"})
    assert sel.kept == ["strong"]
    assert sel.dropped["weak"] == ("smoothed seed precision 0.54 (5 of 8) is below 0.60, the bar a mined "
                                   "keyword must reach")


def test_an_llm_lf_is_judged_on_the_votes_it_adds_to_the_mined_keywords():
    # "check out|love" -> spam: right wherever the mined `check out` votes spam, wrong on the
    # 4 "i love this" hams it adds. Overall 14 of 18 beats chance; what it adds is 0 of 4.
    y = np.array([1] * 16 + [0] * 16)
    mined = np.full(32, -1)
    mined[:14] = 1
    adds_noise = mined.copy()
    adds_noise[[16, 17, 18, 19]] = 1
    adds_cues = mined.copy()
    adds_cues[[14, 15, 16]] = 1                   # adds 2 of 3 right: kept
    redundant = mined.copy()                      # adds nothing: not judged on additions
    L_seed = np.column_stack([mined, adds_noise, adds_cues, redundant])
    L_unl = np.column_stack([np.where(np.arange(40) % 4 == j, 1, -1) for j in range(4)])
    names = ["kw_check_out", "llm_noise", "llm_cues", "llm_copy"]
    assert select_lfs(L_seed, y, L_unl, cardinality=2, names=names, redundancy=1.1).kept == names
    sel = select_lfs(L_seed, y, L_unl, cardinality=2, names=names, redundancy=1.1,
                     incremental={"llm_noise", "llm_cues", "llm_copy"}, rules={"kw_check_out"})
    assert sel.kept == ["kw_check_out", "llm_cues", "llm_copy"]
    assert sel.dropped["llm_noise"] == ("right on 0 of the 4 seeds where it votes and no mined keyword does "
                                        "(chance 0.50): what it adds to the keywords is noise")
    # Without the rule set, every seed vote is an addition: 14 of 18 right, above chance.
    assert "llm_noise" in select_lfs(L_seed, y, L_unl, cardinality=2, names=names, redundancy=1.1,
                                     incremental={"llm_noise"}).kept


def test_vouching_needs_the_class_to_stand_clearly_nearest():
    from lfagent.scoring.meaning import vouched_by_meaning

    class_emb = np.eye(3)
    near = np.array([0.6, 0.55, 0.0])              # nearest class 0, but only by 0.05
    clear = np.array([0.7, 0.3, 0.1])              # nearest by 0.4
    records = np.tile([0.5, 0.4, 0.1], (5, 1))     # nearest by 0.1
    assert not vouched_by_meaning(near, records, class_emb, 0, prior=0.5, n_records=10)
    assert vouched_by_meaning(clear, records, class_emb, 0, prior=0.5, n_records=10)
    assert not vouched_by_meaning(clear, np.tile([0.5, 0.47, 0.1], (5, 1)), class_emb, 0, prior=0.5, n_records=10)
    assert not vouched_by_meaning(clear, records, class_emb, 1, prior=0.5, n_records=10)


def test_select_drops_lf_whose_votes_are_all_cast_already():
    L_seed, y_seed, L_unl, names = planted()
    subset = np.where(np.arange(len(L_unl)) % 2 == 0, L_unl[:, 0], -1)
    seed_subset = np.where(np.arange(len(L_seed)) % 2 == 0, L_seed[:, 0], -1)
    L_seed2 = np.column_stack([L_seed[:, [0, 4]], seed_subset])
    L_unl2 = np.column_stack([L_unl[:, [0, 4]], subset])
    sel = select_lfs(L_seed2, y_seed, L_unl2, cardinality=2, names=["full", "ham", "half"],
                     redundancy=1.1)  # duplicate check off: the forward pass must catch it
    assert sel.kept == ["full", "ham"]
    assert sel.dropped["half"].startswith("adds nothing to the label model")


def test_select_with_gain_fn_keeps_lf_only_when_score_rises():
    L_seed, y_seed, L_unl, names = planted()
    extra_seed = np.where(L_seed[:, 0] == 1, 1, -1)
    extra_unl = np.where(L_unl[:, 0] == 1, 1, -1)  # same rows as kw_subscribe: no new coverage
    L_seed2 = np.column_stack([L_seed[:, [0, 4]], extra_seed])
    L_unl2 = np.column_stack([L_unl[:, [0, 4]], extra_unl])
    calls = []

    def gain(indices):
        calls.append(list(indices))
        return 0.8 + (0.05 if 2 in indices and helps else 0.0)

    for helps, expect in [(True, ["a", "b", "c"]), (False, ["a", "b"])]:
        sel = select_lfs(L_seed2, y_seed, L_unl2, cardinality=2, names=["a", "b", "c"],
                         redundancy=1.1, gain_fn=gain)
        assert sel.kept == expect
    assert "0.800 -> 0.800" in sel.dropped["c"]
    assert all(c == sorted(c) for c in calls)


def test_seed_errors_false_positives_and_misses():
    L_seed = np.array([[1, -1], [1, 0], [-1, 0], [-1, -1], [1, 1]])
    y = np.array([1, 0, 1, 1, 0])
    false_pos, misses = seed_errors(L_seed, y, 0)
    assert false_pos.tolist() == [1, 4] and misses.tolist() == [2, 3]
    false_pos, misses = seed_errors(L_seed, y, 1, label=0)
    assert false_pos.tolist() == [2, 4] and misses.tolist() == []


@pytest.mark.skipif(not (DATA / "wrench-youtube").exists(), reason="shared data not present")
def test_youtube_selection_drops_the_worse_than_chance_lf():
    def load(split):
        rows = list(json.loads((DATA / "wrench-youtube" / f"{split}.json").read_text()).values())
        return np.array([r["weak_labels"] for r in rows]), np.array([r["label"] for r in rows])

    L_unl, _ = load("train")
    L_seed, y_seed = load("valid")
    names = [f"lf{j}" for j in range(L_unl.shape[1])]
    sel = select_lfs(L_seed, y_seed, L_unl, cardinality=2, names=names)
    stats = by_name(sel.stats)
    assert stats["lf7"].seed_accuracy < 0.5 and "not above 1/2" in sel.dropped["lf7"]
    assert len(sel.kept) >= 6
    assert all(stats[name].ci_low > stats[name].chance for name in sel.kept)


def test_rare_class_lf_that_beats_its_prior_but_not_one_in_k_is_dropped():
    # Six classes, class 3 is 2% of the seeds; the LF votes 3 on 40 seeds and is right on 4 of them:
    # its interval beats the 2% prior, yet a label model reads a 10%-accurate vote as no support.
    y = np.array([3, 3, 3, 3] + [0, 1, 2, 4, 5] * 36)[:184]
    rare = np.full(len(y), -1)
    rare[:40] = 3
    good = np.where(y == 1, 1, -1)
    L_seed = np.stack([rare, good], axis=1)
    L_unl = L_seed.copy()
    sel = select_lfs(L_seed, y, L_unl, cardinality=6, names=["rare", "good"])
    stats = by_name(sel.stats)
    assert stats["rare"].ci_low > stats["rare"].chance  # the old rule alone would have kept it
    assert "not above 1/6" in sel.dropped["rare"] and sel.kept == ["good"]


# ---------------------------------------------------------------- invariants (hypothesis)

@st.composite
def label_problems(draw):
    k = draw(st.integers(2, 4))
    m = draw(st.integers(1, 6))
    n_seed, n_unl = draw(st.integers(0, 30)), draw(st.integers(0, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n_seed)
    accurate = rng.random(m) < 0.5  # some LFs copy the truth, so selection has something to keep
    seed_votes = np.where(accurate[None, :], y[:, None], rng.integers(0, k, (n_seed, m)))
    L_seed = np.where(rng.random((n_seed, m)) < 0.5, seed_votes, -1)
    L_unl = np.where(rng.random((n_unl, m)) < 0.5, rng.integers(0, k, (n_unl, m)), -1)
    if m > 1 and draw(st.booleans()):  # exact duplicates make ties that must not follow column order
        L_seed[:, 1], L_unl[:, 1] = L_seed[:, 0], L_unl[:, 0]
    perm = rng.permutation(m)
    return k, L_seed, y, L_unl, perm


@settings(max_examples=60, deadline=None)
@given(label_problems())
def test_stats_invariant_to_lf_order_and_bounded(problem):
    k, L_seed, y, L_unl, perm = problem
    names = [f"lf{j}" for j in range(L_seed.shape[1])]
    stats = lf_stats(L_seed, y, L_unl, cardinality=k, names=names)
    permuted = lf_stats(L_seed[:, perm], y, L_unl[:, perm], cardinality=k,
                        names=[names[j] for j in perm])
    assert by_name(stats) == by_name(permuted)
    for s in stats:
        for fraction in (s.coverage, s.overlap, s.conflict, s.seed_coverage, s.chance):
            assert 0.0 <= fraction <= 1.0
        assert s.conflict <= s.overlap <= s.coverage
        if s.seed_accuracy is not None:
            assert s.ci_low <= s.seed_accuracy <= s.ci_high


@settings(max_examples=40, deadline=None)
@given(label_problems())
def test_selection_invariant_to_lf_order(problem):
    k, L_seed, y, L_unl, perm = problem
    names = [f"lf{j}" for j in range(L_seed.shape[1])]
    sel = select_lfs(L_seed, y, L_unl, cardinality=k, names=names, min_votes=1)
    permuted = select_lfs(L_seed[:, perm], y, L_unl[:, perm], cardinality=k,
                          names=[names[j] for j in perm], min_votes=1)
    assert set(sel.kept) == set(permuted.kept)
    assert sel.dropped == permuted.dropped
    assert set(sel.kept) | set(sel.dropped) == set(names)
