"""Label model, calibration and multi-label aggregation (lfagent.fit)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from lfagent.fit import (
    IsotonicCalibrator, LabelModel, MultiLabelModel, PlattScaler, TemperatureScaler,
    cross_fit_calibrated_probs, expected_calibration_error, majority_vote, majority_vote_proba,
    multilabel_expected_calibration_error, reliability_bins,
)
from lfagent.fit.label_matrix import LabelMatrixError
from lfagent.fit.metal import initial_mu, overlaps
from lfagent.errors import InputError

from synthetic import make_label_matrix, make_unipolar_label_matrix

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mixed_quality(seed=0, n=4000):
    """3 good LFs and 7 near-chance LFs: majority vote is fooled, a weighted model is not."""
    acc = np.array([0.92, 0.9, 0.88] + [0.55] * 7)
    return make_label_matrix(n, acc, np.full(10, 0.6), cardinality=2, seed=seed)


# ---- majority vote -----------------------------------------------------------------------------
def test_majority_ties_follow_prior_and_uncovered_rows_get_prior():
    L = np.array([[0, 1, -1], [-1, -1, -1], [1, 1, 0]])
    prior = np.array([0.3, 0.7])
    assert majority_vote(L, 2, class_prior=prior).tolist() == [1, 1, 1]
    assert majority_vote(L, 2, class_prior=prior[::-1]).tolist() == [0, 0, 1]
    np.testing.assert_allclose(majority_vote_proba(L, 2, class_prior=prior)[1], prior)


def test_weighted_majority_lets_heavy_lf_win():
    L = np.array([[0, 1, 1]])
    assert majority_vote(L, 2, weights=np.array([5.0, 1.0, 1.0])).tolist() == [0]


# ---- Dawid-Skene and metal on synthetic data ---------------------------------------------------
@pytest.mark.parametrize("method", ["dawid_skene", "metal"])
def test_recovers_lf_accuracies_and_propensities(method):
    data = make_label_matrix(20000, [0.9, 0.8, 0.7, 0.65, 0.85], [0.5, 0.7, 0.9, 0.4, 0.3],
                             cardinality=3, seed=1)
    lm = LabelModel(3, method).fit(data.L, seed=0)
    conf = lm.get_conditional_probs()            # m x k x (k+1)
    prior = lm.class_prior_
    voted = 1.0 - conf[:, :, 3]                  # P(vote | class)
    correct = np.einsum("jcc->jc", conf[:, :, :3])
    est_acc = (correct * prior).sum(1) / (voted * prior).sum(1)
    np.testing.assert_allclose(est_acc, data.accuracies, atol=0.03)
    np.testing.assert_allclose((voted * prior).sum(1), data.propensities, atol=0.02)


@pytest.mark.parametrize("method", ["dawid_skene", "metal"])
def test_beats_majority_vote_when_lf_quality_differs(method):
    train, test = mixed_quality(seed=2), mixed_quality(seed=3)
    lm = LabelModel(2, method).fit(train.L, seed=0)
    mv_acc = np.mean(majority_vote(test.L, 2) == test.y)
    assert lm.score(test.L, test.y) > mv_acc + 0.03


def test_dawid_skene_above_its_row_cap_fits_a_seeded_sample_close_to_the_full_fit():
    from lfagent.fit.dawid_skene import fit_dawid_skene

    data = make_label_matrix(20000, [0.9, 0.8, 0.7, 0.65, 0.85, 0.6, 0.75, 0.8], [0.5, 0.7, 0.9, 0.4, 0.3, 0.6, 0.5, 0.8],
                             cardinality=3, seed=1)
    full = fit_dawid_skene(data.L, 3)
    capped = fit_dawid_skene(data.L, 3, max_rows=4000)
    assert not np.array_equal(full.confusion, capped.confusion)  # the cap is in force
    np.testing.assert_allclose(capped.confusion, full.confusion, atol=0.03)
    np.testing.assert_allclose(capped.class_prior, full.class_prior, atol=0.03)
    again = fit_dawid_skene(data.L, 3, max_rows=4000)
    assert np.array_equal(again.confusion, capped.confusion)  # the same sample every time
    assert np.array_equal(fit_dawid_skene(data.L, 3, max_rows=20000).confusion, full.confusion)


def test_unipolar_lfs_good_and_bad_are_told_apart():
    data = make_unipolar_label_matrix(
        10000, voted_class=[1, 1, 0, 0, 1, 0], recall=[0.5, 0.4, 0.5, 0.4, 0.6, 0.6],
        false_rate=[0.02, 0.05, 0.03, 0.02, 0.45, 0.45], seed=4)
    conf = LabelModel(2, "dawid_skene").fit(data.L).get_conditional_probs()
    for j, c in enumerate([1, 1, 0, 0, 1, 0]):
        lift = conf[j, c, c] / conf[j, 1 - c, c]
        assert (lift > 5) if j < 4 else (lift < 2), (j, lift)


@pytest.mark.parametrize("method", ["auto", "dawid_skene", "metal"])
def test_fit_is_deterministic_given_seed(method):
    data = mixed_quality(seed=5, n=1000)
    a = LabelModel(2, method).fit(data.L, seed=3).predict_proba(data.L)
    b = LabelModel(2, method).fit(data.L, seed=3).predict_proba(data.L)
    np.testing.assert_array_equal(a, b)


def test_metal_start_follows_the_seed_as_snorkel_does():
    # Snorkel: np.random.seed(seed); mu = mu_init * np.random.random()  (0.5488135 for seed 0)
    data = mixed_quality(seed=5, n=1000)
    O = overlaps(data.L, 2)
    mu_init, start = initial_mu(O, np.array([0.5, 0.5]), 0.7, seed=0)
    on_diagonal = mu_init > 0
    np.testing.assert_allclose(start[on_diagonal] / mu_init[on_diagonal], 0.5488135039273248)
    np.testing.assert_allclose(mu_init[0, 0], O[0, 0] * 0.7 / 0.5)
    few = {"n_epochs": 3}
    a = LabelModel(2, "metal").fit(data.L, seed=0, **few).metal_fit_.mu
    b = LabelModel(2, "metal").fit(data.L, seed=1, **few).metal_fit_.mu  # draw 0.417: another start
    assert np.abs(a - b).max() > 1e-2


def test_snorkel_options_steer_metal_and_are_checked():
    data = mixed_quality(seed=14, n=1000)
    default = LabelModel(2, "metal").fit(data.L, seed=0).metal_fit_.mu
    short = LabelModel(2, "metal").fit(data.L, seed=0, n_epochs=2).metal_fit_.mu
    assert np.abs(default - short).max() > 1e-2
    per_lf = LabelModel(2, "metal").fit(data.L, seed=0, prec_init=[0.7] * 10).metal_fit_.mu
    np.testing.assert_allclose(per_lf, default)
    with pytest.raises(InputError, match="prec_init has 3 values for 10 LFs"):
        LabelModel(2, "metal").fit(data.L, prec_init=[0.7] * 3)
    with pytest.raises(InputError, match="n_epochs"):
        LabelModel(2, "metal").fit(data.L, n_epochs=0)


# ---- properties --------------------------------------------------------------------------------
label_matrices = st.integers(2, 4).flatmap(lambda k: st.tuples(
    st.just(k), arrays(np.int64, st.tuples(st.integers(1, 40), st.integers(1, 6)),
                       elements=st.integers(-1, k - 1))))


@settings(max_examples=40, deadline=None)
@given(label_matrices, st.sampled_from(["dawid_skene", "majority", "metal"]))
def test_probabilities_are_distributions(case, method):
    k, L = case
    P = LabelModel(k, method).fit(L, seed=0).predict_proba(L)
    assert P.shape == (L.shape[0], k)
    assert np.all(P >= 0) and np.all(P <= 1)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["dawid_skene", "metal"]))
def test_permuting_lf_columns_does_not_change_predictions(seed, method):
    rng = np.random.default_rng(seed)
    data = make_label_matrix(300, rng.uniform(0.5, 0.95, 6), rng.uniform(0.2, 0.9, 6),
                             cardinality=3, seed=seed)
    perm = rng.permutation(6)
    P = LabelModel(3, method).fit(data.L, seed=0).predict_proba(data.L)
    P_perm = LabelModel(3, method).fit(data.L[:, perm], seed=0).predict_proba(data.L[:, perm])
    np.testing.assert_allclose(P, P_perm, atol=1e-4)


@pytest.mark.parametrize("method", ["dawid_skene", "majority", "metal"])
def test_all_abstain_rows_get_the_prior(method):
    data = mixed_quality(seed=6, n=2000)
    L = data.L.copy()
    L[:50] = -1
    lm = LabelModel(2, method).fit(L, class_balance=[0.3, 0.7])
    np.testing.assert_allclose(lm.predict_proba(L[:50]), np.tile([0.3, 0.7], (50, 1)))


# ---- auto selection with dev labels ------------------------------------------------------------
def test_auto_uses_dev_labels_to_choose_and_reports_cross_fitted_figures():
    train, dev = mixed_quality(seed=7), mixed_quality(seed=8, n=150)
    lm = LabelModel(2, "auto").fit(train.L, seed=0, L_dev=dev.L, y_dev=dev.y)
    assert lm.selection_.chosen == "dawid_skene" == lm.chosen_method_
    assert lm.selection_.accuracy["dawid_skene"] > lm.selection_.accuracy["majority"]
    assert set(lm.selection_.accuracy) == {"majority", "dawid_skene", "metal"}
    assert LabelModel(2).fit(train.L).chosen_method_ == "metal"  # no dev labels: Snorkel's estimator


def test_auto_picks_majority_when_dawid_skene_is_misled():
    # LFs 0-3 copy each other (strongly correlated errors): DS trusts the copies, MV is safer.
    rng = np.random.default_rng(9)
    n = 3000
    y = rng.integers(0, 2, n)
    shared_noise = np.where(rng.random(n) < 0.35, 1 - y, y)
    L = np.column_stack([shared_noise] * 4 + [np.where(rng.random(n) < 0.8, y, 1 - y) for _ in range(5)])
    train, dev, test = slice(0, 2000), slice(2000, 2200), slice(2200, n)
    lm = LabelModel(2, "auto").fit(L[train], seed=0, L_dev=L[dev], y_dev=y[dev])
    assert lm.chosen_method_ == "majority"
    ds = LabelModel(2, "dawid_skene").fit(L[train], seed=0)
    assert lm.score(L[test], y[test]) > ds.score(L[test], y[test]) + 0.05


# ---- state -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dawid_skene", "majority", "metal"])
def test_state_round_trips_through_json(tmp_path, method):
    data = mixed_quality(seed=10, n=1500)
    lm = LabelModel(2, method).fit(data.L, seed=0)
    state = json.loads(json.dumps(lm.to_state()))
    again = LabelModel.from_state(state)
    np.testing.assert_allclose(again.predict_proba(data.L), lm.predict_proba(data.L))
    lm.save(tmp_path / "lm.json")
    np.testing.assert_allclose(LabelModel.load(tmp_path / "lm.json").predict_proba(data.L),
                               lm.predict_proba(data.L))


def test_bad_state_raises_clear_error():
    with pytest.raises(LabelMatrixError, match="not a LabelModel state"):
        LabelModel.from_state({"cardinality": 2})
    state = LabelModel(2, "metal").fit(mixed_quality(seed=15, n=300).L).to_state()
    with pytest.raises(LabelMatrixError, match="state mu has shape"):
        LabelModel.from_state({**state, "mu": state["mu"][:-1]})
    with pytest.raises(LabelMatrixError, match="does not match its parameters"):
        LabelModel.from_state({**state, "chosen_method": "dawid_skene"})


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("L, match", [
    (np.array([[0.5, 1.0]]), "integers"),
    (np.array([[0, 2]]), "holds 2 but cardinality is 2"),
    (np.array([[0, -2]]), "holds -2"),
    (np.array([0, 1, 1]), "2-D"),
    (np.array([["a", "b"]]), "integers"),
    (np.zeros((3, 0), dtype=int), "no labeling-function columns"),
])
def test_bad_label_matrix_raises_value_error_naming_the_problem(L, match):
    with pytest.raises(ValueError, match=match):
        LabelModel(2).fit(L)


def test_predict_checks_lf_count_and_errors_are_input_errors():
    lm = LabelModel(2).fit(np.array([[0, 1, -1], [1, 1, 0]]))
    with pytest.raises(InputError, match="2 labeling-function columns; the model was fitted on 3"):
        lm.predict(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="class_balance must have 2 entries"):
        LabelModel(2).fit(np.array([[0, 1]]), class_balance=[1.0])
    with pytest.raises(ValueError, match="y_dev has 1 labels but there are 2 rows"):
        LabelModel(2).fit(np.array([[0, 1]] * 9), L_dev=np.array([[0, 1]] * 2), y_dev=[0])
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelModel(2).predict(np.array([[0]]))


def test_snorkel_style_call_is_accepted():
    data = mixed_quality(seed=11, n=500)
    lm = LabelModel(cardinality=2, verbose=False)
    lm.fit(data.L, n_epochs=500, seed=0, log_freq=100)
    assert lm.predict(data.L).shape == (500,)
    with pytest.raises(TypeError, match="n_epoch"):
        lm.fit(data.L, n_epoch=5)


# ---- calibration -------------------------------------------------------------------------------
def overconfident_probs(seed=0, n=4000, k=3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true_p])
    sharp = np.exp(3 * logits)
    return sharp / sharp.sum(1, keepdims=True), y


@pytest.mark.parametrize("calibrator", [TemperatureScaler, IsotonicCalibrator])
def test_calibration_lowers_ece_on_held_out_rows(calibrator):
    probs, y = overconfident_probs(seed=0)
    test_probs, test_y = overconfident_probs(seed=1)
    before = expected_calibration_error(test_probs, test_y)
    after = expected_calibration_error(calibrator().fit(probs, y).transform(test_probs), test_y)
    assert before > 0.1 and after < before / 2


def test_temperature_recovers_sharpening_factor():
    probs, y = overconfident_probs(seed=2, n=8000)
    assert TemperatureScaler().fit(probs, y).temperature == pytest.approx(3.0, rel=0.15)


def test_cross_fit_calibration_is_out_of_fold_and_helps():
    probs, y = overconfident_probs(seed=3, n=2000)
    out = cross_fit_calibrated_probs(probs, y, method="temperature", n_folds=5, seed=0)
    assert out.shape == probs.shape
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert expected_calibration_error(out, y) < expected_calibration_error(probs, y) / 2


def test_ece_and_reliability_bins_on_hand_made_example():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    bins = reliability_bins(probs, y, n_bins=5)
    assert [b.count for b in bins] == [0, 0, 0, 2, 2]
    assert bins[4].accuracy == 0.5 and bins[4].mean_confidence == pytest.approx(0.85)
    # bins: (0.6, 0.8] -> conf .65 acc 1; (0.8,1] -> conf .85 acc .5
    assert expected_calibration_error(probs, y, n_bins=5) == pytest.approx(0.5 * 0.35 + 0.5 * 0.35)


def test_ece_is_zero_for_a_perfectly_calibrated_sample():
    probs = np.tile([0.75, 0.25], (4, 1))
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="probabilities"):
        TemperatureScaler().fit(np.array([[1.5, -0.5]]), np.array([0]))
    with pytest.raises(ValueError, match="y has 2 labels but there are 1 rows"):
        TemperatureScaler().fit(np.array([[0.5, 0.5]]), np.array([0, 1]))


# ---- multi-label -------------------------------------------------------------------------------
def test_multilabel_probabilities_are_independent_and_in_range():
    rng = np.random.default_rng(12)
    n, k = 3000, 3
    Y = (rng.random((n, k)) < [0.5, 0.3, 0.2]).astype(int)
    cols = []
    for c in range(k):  # three LFs per class: vote c on most of its positives, rarely on negatives
        for recall in (0.7, 0.6, 0.5):
            fires = rng.random(n) < np.where(Y[:, c] == 1, recall, 0.05)
            cols.append(np.where(fires, c, -1))
    L = np.column_stack(cols)
    model = MultiLabelModel(k, "dawid_skene").fit(L, seed=0)
    P = model.predict_proba(L)
    assert P.shape == (n, k) and P.min() >= 0 and P.max() <= 1
    assert not np.allclose(P.sum(1), 1.0)  # not a softmax: several classes can be on at once
    for c in range(k):  # each class's probability ranks its positives above its negatives
        assert roc_auc_score(Y[:, c], P[:, c]) > 0.85
    assert multilabel_expected_calibration_error(P, Y) < 0.2
    # auto without dev labels: Dawid-Skene per class (metal's uniform prior gives bare rows 0.5)
    np.testing.assert_allclose(MultiLabelModel(k).fit(L, seed=0).predict_proba(L), P)
    with pytest.raises(ValueError, match="other_class_votes"):
        MultiLabelModel(k, other_class_votes="sometimes")
    again = MultiLabelModel.from_state(json.loads(json.dumps(model.to_state())))
    np.testing.assert_allclose(again.predict_proba(L), P)


def test_a_label_sets_silence_on_a_record_it_labelled_counts_against_the_class():
    from lfagent.fit.multilabel import binary_view

    # columns: a keyword LF for class 0, then one source's label sets (its LFs for classes 0 and 1)
    L = np.array([[0, 0, -1],     # the source gave {0}
                  [0, -1, 1],     # the source gave {1}: silent on 0, so against 0
                  [0, -1, -1]])   # the source never saw this record
    sets = {1: 0, 2: 1}
    assert binary_view(L, 0, label_sets=sets).tolist() == [[1, 1, -1], [1, 0, -1], [1, -1, -1]]
    assert binary_view(L, 1, label_sets=sets).tolist() == [[-1, -1, 0], [-1, -1, 1], [-1, -1, -1]]
    assert binary_view(L, 0).tolist() == [[1, 1, -1], [1, -1, -1], [1, -1, -1]]  # without: an abstain
    # On data: three keyword LFs for class 0 that also fire on a third of the other records; the source,
    # right 95% of the time, labels half the records. Where it labelled a record without class 0, the
    # keywords' votes for it no longer stand unopposed.
    rng = np.random.default_rng(0)
    n = 6000
    y = rng.integers(0, 2, n)  # 1: class 0 applies, else class 1
    said = np.where(rng.random(n) < 0.95, y, 1 - y)
    seen = rng.random(n) < 0.5
    keywords = [np.where(rng.random(n) < np.where(y == 1, 0.7, 0.3), 0, -1) for _ in range(3)]
    L = np.column_stack([*keywords, np.where(seen & (said == 1), 0, -1), np.where(seen & (said == 0), 1, -1)])
    sets = {3: 0, 4: 1}
    against = seen & (said == 0) & (L[:, :3] == 0).all(axis=1)  # every keyword says class 0, the source not
    with_sets = MultiLabelModel(2, "dawid_skene", label_sets=sets).fit(L, seed=0)
    without = MultiLabelModel(2, "dawid_skene").fit(L, seed=0)
    assert with_sets.predict_proba(L)[against, 0].mean() < 0.5 < 0.8 < without.predict_proba(L)[against, 0].mean()
    model = with_sets
    again = MultiLabelModel.from_state(json.loads(json.dumps(model.to_state())))
    np.testing.assert_allclose(again.predict_proba(L), model.predict_proba(L))


def _asked_source(rng, n):
    """Three classes; a keyword LF for class 0; one source (an LLM's label sets, columns 1-3) asked about 80% of
    the records, giving each true class with p 0.9, each other with p 0.03, and at least one class."""
    Y = np.eye(3, dtype=int)[rng.choice(3, n, p=[0.15, 0.35, 0.5])]
    Y[rng.random(n) < 0.1, 1] = 1
    asked = rng.random(n) < 0.8
    said = (rng.random((n, 3)) < np.where(Y == 1, 0.9, 0.03)).astype(int)
    none = said.sum(axis=1) == 0
    said[none, rng.integers(0, 3, n)[none]] = 1
    keyword = np.where(rng.random(n) < np.where(Y[:, 0] == 1, 0.2, 0.02), 0, -1)
    L = np.column_stack([keyword] + [np.where(asked & (said[:, c] == 1), c, -1) for c in range(3)])
    return L, Y, asked, said


def test_a_label_set_source_asked_about_some_records_is_measured_on_the_seeds_it_labelled():
    from lfagent.fit.dawid_skene import KnownRows

    rng = np.random.default_rng(0)
    L, Y, asked, said = _asked_source(rng, 3000)
    L_seed, Y_seed, _, _ = _asked_source(rng, 100)
    sets = {1: 0, 2: 1, 3: 2}
    no = asked & (said[:, 0] == 0) & (L[:, 0] == -1)  # it labelled the record without class 0, the keyword silent
    assert Y[no, 0].mean() < 0.03
    known = MultiLabelModel(3, label_sets=sets).fit(L, seed=0, L_known=L_seed, Y_known=Y_seed)
    alone = MultiLabelModel(3, label_sets=sets).fit(L, seed=0)
    # Without the seeds, EM over the source and one sparse LF is not identified: it reads "labelled without
    # class 0" as weak evidence (P 0.11 here). Measured on the seeds it labelled, the source's "no" counts.
    assert known.predict_proba(L)[no, 0].mean() < 0.05 < 0.08 < alone.predict_proba(L)[no, 0].mean()
    # Which records it was asked about says nothing of their class: one abstain rate for every class.
    table = known.models_[0].get_conditional_probs()
    assert table[1, 0, 2] == pytest.approx(table[1, 1, 2])
    assert not np.isclose(table[0, 0, 2], table[0, 1, 2])  # the keyword's abstains still tell
    # Its rates are the seeds' measure, not EM's: saying class 0 far more often on the records moves them only
    # through the smoothing (by EM: 0.1).
    louder = L.copy()
    louder[asked & (rng.random(len(L)) < 0.3), 1] = 0
    table_louder = MultiLabelModel(3, label_sets=sets).fit(louder, seed=0, L_known=L_seed, Y_known=Y_seed)
    votes = lambda t: t[1, :, :2] / t[1, :, :2].sum(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(votes(table_louder.models_[0].get_conditional_probs()), votes(table), atol=0.03)
    # Only the source's votes on the seeds count: the keyword may have been mined from them.
    flipped = L_seed.copy()
    flipped[:, 0] = np.where(flipped[:, 0] == 0, -1, 0)
    again = MultiLabelModel(3, label_sets=sets).fit(L, seed=0, L_known=flipped, Y_known=Y_seed)
    np.testing.assert_allclose(again.predict_proba(L), known.predict_proba(L))
    counted = KnownRows.from_votes(np.array([[1, -1], [0, 1], [-1, 0]]), np.array([1, 0, 1]), 2, [1])
    assert counted.tables[0].sum() == 0 and counted.tables[1].tolist() == [[0, 1, 0], [1, 0, 1]]
    assert counted.classes.tolist() == [1, 2]
    with pytest.raises(LabelMatrixError, match="Y_known"):
        MultiLabelModel(3, label_sets=sets).fit(L, L_known=L_seed, Y_known=Y_seed[:, :2])


def test_platt_scaler_calibrates_multilabel_columns():
    rng = np.random.default_rng(13)
    true_p = rng.uniform(0.05, 0.95, (4000, 2))
    Y = (rng.random((4000, 2)) < true_p).astype(int)
    sharp = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))
    fixed = PlattScaler().fit(sharp[:2000], Y[:2000]).transform(sharp[2000:])
    assert (multilabel_expected_calibration_error(fixed, Y[2000:])
            < multilabel_expected_calibration_error(sharp[2000:], Y[2000:]) / 2)



def test_even_odds_thresholds_decide_where_the_uncalibrated_joint_reaches_one_half():
    from lfagent.fit.calibrator import Calibrator, even_odds_thresholds, fit_calibrator

    rng = np.random.default_rng(5)
    raw = rng.uniform(0.01, 0.99, (600, 3))
    Y = (rng.random((600, 3)) < raw ** 2).astype(int)  # over-confident about positives: Platt moves the cut
    calibrator = fit_calibrator(raw, Y, multi_label=True)
    calibrator.thresholds = even_odds_thresholds(calibrator)
    assert not np.allclose(calibrator.thresholds, 0.5)
    assert (calibrator.decide(calibrator.transform(raw)) == (raw >= 0.5)).mean() > 0.995  # ties at the cut
    falling = Calibrator(multi_label=True, platt=[(2.0, -1.0), (-0.5, 0.3)])
    assert even_odds_thresholds(falling) == [pytest.approx(1 / (1 + np.exp(1.0))), 0.5]

# ---- real data ---------------------------------------------------------------------------------
def load_wrench(name, split):
    rows = json.loads((DATA / f"wrench-{name}" / f"{split}.json").read_text()).values()
    return (np.array([r["weak_labels"] for r in rows], dtype=np.int64),
            np.array([r["label"] for r in rows], dtype=np.int64))


# Snorkel 0.10 LabelModel(cardinality=k).fit(L_train, n_epochs=500, seed=0), test accuracy
# (benchmarks/label_model.py prints it beside ours; snorkel is not imported here).
SNORKEL_TEST_ACCURACY = {"youtube": (2, 0.860), "sms": (2, 0.812), "trec": (6, 0.470)}


@pytest.mark.skipif(not (DATA / "wrench-youtube").exists(), reason="shared data not present")
@pytest.mark.parametrize("name", sorted(SNORKEL_TEST_ACCURACY))
def test_wrench_test_accuracy_matches_snorkel(name):
    k, snorkel_accuracy = SNORKEL_TEST_ACCURACY[name]
    L_train, _ = load_wrench(name, "train")
    L_test, y_test = load_wrench(name, "test")
    metal = LabelModel(cardinality=k, method="metal").fit(L_train, seed=0).score(L_test, y_test)
    assert abs(metal - snorkel_accuracy) <= 0.01
    assert LabelModel(cardinality=k).fit(L_train, seed=0).score(L_test, y_test) >= snorkel_accuracy - 0.005


def test_a_label_set_source_that_labelled_no_seed_is_left_to_em():
    rng = np.random.default_rng(1)
    L, Y, asked, said = _asked_source(rng, 3000)
    L_seed, Y_seed, _, _ = _asked_source(rng, 100)
    L_seed[:, 1:] = -1  # its requests for the seeds failed: nothing measures it
    sets = {1: 0, 2: 1, 3: 2}
    silent = MultiLabelModel(3, label_sets=sets).fit(L, seed=0, L_known=L_seed, Y_known=Y_seed)
    alone = MultiLabelModel(3, label_sets=sets).fit(L, seed=0)
    np.testing.assert_allclose(silent.models_[0].get_conditional_probs()[1],
                               alone.models_[0].get_conditional_probs()[1], atol=0.05)
    yes = asked & (said[:, 0] == 1)
    assert silent.predict_proba(L)[yes, 0].mean() > 0.5  # its "class 0" still counts


def test_lfs_that_vote_together_do_not_pull_the_class_away_from_a_measured_source():
    """Four keyword LFs fire together on the half of class a they catch; an LLM labels every record and the
    seeds. EM let the latent class drift, round by round, to what the keywords catch, so the LLM's other labels
    of a read as its mistakes; measured against the LLM, the keywords cannot move the class."""
    from evals.experiments.correlated_lfs import draw

    rng = np.random.default_rng(1)
    L, Y, said = draw(rng, 3000, keywords=4)
    L_seed, Y_seed, _ = draw(rng, 100, keywords=4)
    model = MultiLabelModel(2, label_sets={4: 0, 5: 1}).fit(L, seed=0, L_known=L_seed, Y_known=Y_seed)
    rows = (said[:, 0] == 1) & (L[:, :4] == -1).all(axis=1)  # the LLM says a, no keyword fires
    assert Y[rows, 0].mean() > 0.85
    assert model.predict_proba(L)[rows, 0].mean() > 0.6  # 0.036 with the LLM's rates fixed inside EM


def test_a_source_measured_on_the_seeds_that_labelled_no_record_leaves_the_other_lfs_to_em():
    rng = np.random.default_rng(2)
    L, Y, asked, said = _asked_source(rng, 3000)
    L_seed, Y_seed, _, _ = _asked_source(rng, 100)
    L[:, 1:] = -1  # its budget ran out after the seeds
    sets = {1: 0, 2: 1, 3: 2}
    model = MultiLabelModel(3, label_sets=sets).fit(L, seed=0, L_known=L_seed, Y_known=Y_seed)
    keyword = L[:, 0] == 0
    assert model.predict_proba(L)[keyword, 0].mean() > 0.5  # the keyword counts (0.18, the prior, before)
