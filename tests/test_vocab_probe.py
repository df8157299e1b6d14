"""The vocabulary probe's scoring: which class a word leans to, letter bias removal, AUC."""
import numpy as np

from evals.vocab_probe import (MISSING_LOGPROB, auc, balanced_accuracy, centred, leaning, letter_logprobs,
                               word_counts)


def test_word_counts_count_texts_per_class_once_per_text_without_stopwords():
    words, counts = word_counts(["Win a prize prize now", "the prize is mine", "see you at home"],
                                np.array([1, 0, 0]), 2)
    row = dict(zip(words, counts.tolist()))
    assert row["prize"] == [1, 1]          # twice in the first text counts once
    assert row["win"] == [0, 1]
    assert "the" not in row and "at" not in row   # stopwords and words under three letters


def test_a_word_leans_when_it_covers_half_the_way_from_prior_to_certainty():
    prior = np.array([0.865, 0.135])  # sms: ham, spam
    counts = np.array([[40, 60],    # spam share 0.60 >= 0.5675
                       [45, 55],    # 0.55: not enough for spam
                       [92, 8],     # ham share 0.92 < 0.9325
                       [95, 5]])    # ham 0.95
    assert leaning(counts, prior).tolist() == [1, -1, -1, 0]


def test_centring_removes_a_letter_bias_shared_by_every_word():
    # The model says A for everything, but by less for the second word: relative to its habit, that is B.
    raw = np.array([[-0.1, -3.0], [-0.5, -1.0], [-0.1, -2.9]])
    assert raw.argmax(axis=1).tolist() == [0, 0, 0]
    assert centred(raw).argmax(axis=1).tolist() == [0, 1, 0]


def test_letter_logprobs_read_spaced_bracketed_and_lower_case_letters():
    top = [(" B", -0.2), ("A)", -1.5), ("a", -0.9), ("Z", -0.1), ("Hello", -0.3)]
    out = letter_logprobs(top, 3)
    assert out.tolist() == [-0.9, -0.2, MISSING_LOGPROB]   # the best spelling of A wins; C never offered


def test_auc_and_balanced_accuracy():
    scores = np.array([0.9, 0.8, 0.1, 0.2])
    positive = np.array([True, True, False, False])
    assert auc(scores, positive) == 1.0
    assert auc(-scores, positive) == 0.0
    assert auc(np.zeros(4), positive) == 0.5
    assert np.isnan(auc(scores, np.ones(4, bool)))
    # Three of class 0 all right, one of class 1 wrong: balanced 0.5, plain accuracy would say 0.75.
    assert balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), 2) == 0.5
