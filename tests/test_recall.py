"""Recall LFs (propose/llm_recall.py) and judging an LF by its agreement with the model (scoring/agreement.py)."""
import json

import numpy as np
import pytest

from lfagent.propose.llm_recall import covered_listing, parse_recall_reply, recall_request
from lfagent.propose.parse import ProposalRejected
from lfagent.scoring.agreement import MIN_RECORDS, agreement_with_model

NAMES = ["ham", "spam"]


def parse(reply, covered=()):
    return parse_recall_reply(reply, target="spam", class_names=NAMES, round_=1, model="m", covered=list(covered))


# ---- reading the reply -------------------------------------------------------------------------------

def test_a_bare_list_an_object_and_the_rules_form_all_read():
    lfs, rejected = parse('["txt now", "prize"]')
    assert [lf.keywords for lf in lfs] == [["txt now"], ["prize"]] and not rejected
    assert all(lf.label == "spam" and lf.provenance.source == "llm:recall" and not lf.provenance.shown for lf in lfs)
    lfs, _ = parse('Sure! ```json\n{"keywords": ["claim"], "patterns": ["\\\\b\\\\d{5}\\\\b"]}\n```')
    assert [lf.kind for lf in lfs] == ["keywords", "regex"] and lfs[1].pattern == r"\b\d{5}\b"
    lfs, rejected = parse(json.dumps({"rules": [{"class": "SPAM", "keywords": ["urgent"]},
                                                {"class": "ham", "keywords": ["lol"]}]}))
    assert [lf.keywords for lf in lfs] == [["urgent"]]
    assert rejected == ["rule for class 'ham': the request asked about 'spam'"]


def test_covered_common_and_bad_cues_are_rejected_with_reasons():
    lfs, rejected = parse(json.dumps({"keywords": ["Prize", "the", "x" * 60, "free entry", 7],
                                      "patterns": ["(a|", ".*", "(win)?", "a" * 200]}), covered=["prize"])
    assert [lf.keywords for lf in lfs] == [["free entry"]]
    text = " | ".join(rejected)
    for part in ("'Prize': already covered", "'the': only common words", "longer than 40", "not strings",
                 "'(a|': not a valid regular expression", "'.*': no letters", "'(win)?': matches the empty text",
                 "longer than 120"):
        assert part in text, part


@pytest.mark.parametrize("reply", ["", "no idea", "{not json", '"spam"', "42", '{"answer": "spam"}',
                                   "[" * 5000 + "]" * 5000], ids=range(7))
def test_malformed_or_empty_replies_are_rejected(reply):
    with pytest.raises(ProposalRejected):
        parse(reply)


def test_the_request_lists_covered_cues_and_shows_no_seed_text():
    from lfagent.propose.prompting import PromptContext
    from lfagent.task import ClassSpec, TaskSpec

    task = TaskSpec(name="t", description="SMS spam", seeds="seeds.jsonl",
                    classes=[ClassSpec(name="ham", description="normal"), ClassSpec(name="spam", description="ads")])
    context = PromptContext(task=task, examples={"spam": ["SEED TEXT win a prize"]},
                            covered={"spam": ["prize", "win", "/\\d{5}/"]})
    prompt = recall_request(context, "spam").messages[-1].content
    assert "SEED TEXT" not in prompt and "Class spam: ads" in prompt
    assert "- any of 'prize', 'win' -> spam" in prompt and "- /\\d{5}/i -> spam" in prompt
    assert covered_listing([], "spam") == "- (none yet)"


# ---- agreement with the model --------------------------------------------------------------------------

def _model(n=400, seed=0):
    """A model's probabilities (n x 3) and the class each record really is, the model right on ~80%."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    guess = np.where(rng.random(n) < 0.8, truth, rng.integers(0, 3, n))
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), guess] = 0.8
    return probs, truth


def test_a_cue_of_its_class_agrees_a_decoy_disagrees_a_rare_one_is_undecided():
    probs, truth = _model()
    rng = np.random.default_rng(1)
    L = np.full((len(truth), 3), -1)
    good = (truth == 2) & (rng.random(len(truth)) < 0.5)
    L[good, 0] = 2                       # votes class 2 where records are of class 2
    decoy = (truth == 0) & (rng.random(len(truth)) < 0.5)
    L[decoy, 1] = 2                      # votes class 2 on records of class 0
    L[np.flatnonzero(truth == 2)[:MIN_RECORDS - 1], 2] = 2   # too few records
    judged = agreement_with_model(L, probs, ["good", "decoy", "rare"])
    assert [judged[n].verdict for n in ("good", "decoy", "rare")] == ["agrees", "disagrees", "undecided"]
    assert judged["good"].low > judged["good"].bar > judged["decoy"].high
    assert "disagrees with the current model" in judged["decoy"].reason()
    assert "too few" in judged["rare"].reason()


def test_agreement_does_not_depend_on_column_order_and_checks_shapes():
    probs, truth = _model(seed=3)
    L = np.where(np.random.default_rng(2).random((len(truth), 4)) < 0.1, truth[:, None], -1)
    names = ["a", "b", "c", "d"]
    forward = agreement_with_model(L, probs, names)
    backward = agreement_with_model(L[:, ::-1], probs, names[::-1])
    assert forward == {n: backward[n] for n in names}
    with pytest.raises(ValueError, match="n x 4"):
        agreement_with_model(L[:10], probs, names)


def test_a_vote_for_a_rare_class_is_held_to_one_in_k_not_to_its_share():
    # Class 1 holds 5% of the model's mass: an LF whose records the model gives 0.3 of class 1 beats the
    # share, but a label model would read votes right 30% of the time in two classes as no support.
    probs = np.tile([0.95, 0.05], (400, 1))
    probs[:40] = [0.7, 0.3]
    L = np.full((400, 1), -1)
    L[:40, 0] = 1
    judged = agreement_with_model(L, probs, ["weak"])["weak"]
    assert judged.bar == pytest.approx(0.5) and judged.verdict == "disagrees"


def test_a_vote_the_model_splits_with_a_stronger_class_does_not_agree():
    # Six classes, chance about 0.2. On the decoy's records the model is torn between the LF's class (0.45)
    # and another (0.5): well above chance, yet the LF would only push those records the wrong way.
    probs = np.full((300, 6), 0.01)
    probs[:, 3] = 0.95
    probs[:30] = [0.45, 0.5, 0.02, 0.01, 0.01, 0.01]
    probs[30:60] = [0.02, 0.02, 0.9, 0.02, 0.02, 0.02]
    L = np.full((300, 2), -1)
    L[:30, 0] = 0        # the decoy
    L[30:60, 1] = 2      # a cue of its class
    judged = agreement_with_model(L, probs, ["decoy", "cue"])
    decoy = judged["decoy"]
    assert decoy.agreement == pytest.approx(0.45) and decoy.rival == pytest.approx(0.5)
    assert decoy.low > decoy.bar  # above chance: it would have agreed on that alone
    assert decoy.verdict == "undecided" and "strongest other class gets 0.50" in decoy.reason()
    assert judged["cue"].verdict == "agrees"


def test_an_llm_keyword_for_the_majority_class_must_clear_the_mined_keywords_bar_to_agree():
    # Ham holds 88% of the model's mass. A word the model puts in ham 0.93 of the time beats that share, but
    # a mined keyword would need 0.98: as an LLM keyword it stays undecided; as a code LF it agrees.
    probs = np.tile([0.87, 0.13], (2000, 1))
    probs[:300] = [0.93, 0.07]
    L = np.full((2000, 2), -1)
    L[:300, :] = 0
    judged = agreement_with_model(L, probs, ["can", "code"], keywords={"can"})
    word, code = judged["can"], judged["code"]
    assert word.bar < word.low < word.cue_bar and word.cue_bar == pytest.approx(word.bar + 0.1)
    assert word.verdict == "undecided" and "the bar a mined keyword must reach" in word.reason()
    assert code.cue_bar is None and code.verdict == "agrees"
