"""Mined proposers without an LLM: token shapes as regex LFs."""
import re

import numpy as np

from lfagent.sandbox.apply import apply_lfs
from lfagent.propose.mined import describe_shape, mine_ngram_lfs, shape_pattern, token_shape


def test_token_shapes_and_their_patterns():
    assert [token_shape(t) for t in ("87077", "150p", "09058094583", "2nd", "hello")] == \
        ["D5", "D3a", "D7+", "D1a", None]
    five = re.compile(shape_pattern("D5"), re.IGNORECASE)
    assert five.search("txt ENGLAND to 61200 now") and five.search("(86688)")
    assert not five.search("call 870771") and not five.search("ref a87077") and not five.search("1234")
    assert describe_shape("D3a") == "3 digits then letters" and describe_shape("D7+") == "7+ digits"
    premium = re.compile(shape_pattern("D3a"), re.IGNORECASE)
    assert premium.search("only 150P/msg") and not premium.search("150 p")


def spam_with_codes(rng, n):
    # Every spam text has its own short code: no two share it word for word, but all share its shape.
    spam = [f"win big now send go to {rng.integers(10000, 99999)} today" for _ in range(n)]
    ham = [f"see you at {rng.integers(1, 12)} for lunch ok" for _ in range(3 * n)]
    return spam, ham


def test_a_cue_no_two_seeds_share_word_for_word_is_found_by_its_shape():
    rng = np.random.default_rng(0)
    spam, ham = spam_with_codes(rng, 10)
    texts, y = spam + ham, np.array([1] * len(spam) + [0] * len(ham))
    unl_spam, unl_ham = spam_with_codes(rng, 30)
    lfs = mine_ngram_lfs(texts, y, ["ham", "spam"], unlabeled_texts=unl_spam + unl_ham)
    shape_lfs = {lf.name: lf for lf in lfs if lf.provenance.source == "mined:shape"}
    assert "shape_spam_d5" in shape_lfs and shape_lfs["shape_spam_d5"].kind == "regex"
    assert shape_lfs["shape_spam_d5"].description == "a token of 5 digits"
    assert not any(lf.kind == "keywords" and re.fullmatch(r"\d{5}", lf.keywords[0]) for lf in lfs)
    votes = apply_lfs([shape_lfs["shape_spam_d5"]], unl_spam + unl_ham, ["ham", "spam"]).L[:, 0]
    assert (votes[:len(unl_spam)] == 1).all() and (votes[len(unl_spam):] == -1).all()
    without = mine_ngram_lfs(texts, y, ["ham", "spam"], unlabeled_texts=unl_spam + unl_ham, shapes=False)
    assert not any(lf.provenance.source == "mined:shape" for lf in without)
