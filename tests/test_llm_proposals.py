"""LLM replies are untrusted input: each malformed, hostile, truncated or duplicate proposal is rejected with a reason."""
import json

import pytest

from llm_server import HOSTILE_CODE_REPLY
from lfagent.propose.llm_code import PROMPT_PREFIX, parse_code_reply
from lfagent.propose.llm_keywords import parse_keyword_reply
from lfagent.propose.parse import ProposalRejected, extract_json, extract_label_function

CLASSES = ["HAM", "SPAM"]


def parse(reply, target="SPAM"):
    return parse_code_reply(reply, target=target, class_names=CLASSES, round_=1, model="m")


def test_fenced_function_with_chatter_is_extracted():
    reply = ("Sure! Here is the function:\n```python\nimport re\n\ndef label(record):\n"
             "    if re.search(r'check out', record['text'], re.I):\n        return 'SPAM'\n    return None\n```\n"
             "This returns SPAM for promotions.")
    lf = parse(reply)
    assert lf.kind == "code" and lf.label == "SPAM" and "def label" in lf.source
    assert lf.provenance.source == "llm:code"


def test_continuation_of_the_primed_function_is_joined():
    # A server that continues the primed assistant turn returns only the rest of the regex line.
    reply = 'subscribe|my channel)\\b", text):\n        return "SPAM"\n    return None\n```'
    source = extract_label_function(reply, prefix=PROMPT_PREFIX)
    assert source.startswith("import re") and "subscribe|my channel" in source
    assert parse(reply).label == "SPAM"


def test_code_requests_prime_the_reply_with_the_function_start():
    from lfagent.propose.llm_code import code_request
    from lfagent.propose.prompting import PromptContext
    from lfagent.task import TaskSpec

    context = PromptContext(task=TaskSpec(name="t", classes=CLASSES, seeds="s"), examples={"SPAM": ["win cash"]})
    request = code_request(context, "SPAM", sample=3)
    assert [m.role for m in request.messages] == ["system", "user", "assistant"]
    assert request.messages[-1].content.endswith(PROMPT_PREFIX) and request.seed == 3
    assert 'returns "SPAM"' in request.messages[1].content and "win cash" in request.messages[1].content


def test_structured_requests_carry_a_json_schema_that_bounds_the_reply():
    # The client sends request.json_schema as response_format.json_schema.schema. A {"name", "schema"}
    # wrapper of our own there was a schema that allows anything: nothing bounded the replies, and the
    # 0.5B model's concept replies ran into max_tokens as invalid JSON.
    from jsonschema import Draft202012Validator

    from lfagent.propose.llm_concepts import concept_request, parse_concepts
    from lfagent.propose.llm_keywords import keyword_request
    from lfagent.propose.prompting import PromptContext
    from lfagent.task import TaskSpec

    context = PromptContext(task=TaskSpec(name="t", classes=CLASSES, seeds="s"), examples={"SPAM": ["win cash"]})
    keywords = Draft202012Validator(keyword_request(context, "SPAM", "win cash now").json_schema)
    assert keywords.is_valid(["win cash", "now"])
    assert not keywords.is_valid(["a", "b", "c", "d", "e", "f"]) and not keywords.is_valid({"keywords": []})
    concepts = Draft202012Validator(concept_request(context, "SPAM").json_schema)
    reply = {"class": "SPAM", "intent": "sell", "entities": ["cash prize"], "topic_phrases": ["claim your prize"]}
    assert concepts.is_valid(reply) and parse_concepts(json.dumps(reply), "SPAM").entities == ["cash prize"]
    assert not concepts.is_valid({**reply, "intent": "x" * 101})
    assert not concepts.is_valid({**reply, "entities": ["e"] * 7})
    # What a server without structured output sends may be longer; the parser still takes it.
    assert len(parse_concepts(json.dumps({**reply, "entities": ["e"] * 7}), "SPAM").entities) == 7


def test_inverted_logic_is_labelled_by_what_it_returns():
    reply = "```python\ndef label(record):\n    if 'song' in record['text']:\n        return 'HAM'\n    return None\n```"
    assert parse(reply, target="SPAM").label == "HAM"


def test_class_named_in_another_case_is_rewritten_to_the_class():
    reply = ("```python\ndef label(record):\n    t = record['text']  # 'Spam' stays in comments and tests\n"
             "    if 'Spam' in t:\n        return 'spam'\n    return 'Ham ' if 'é' in t else None\n```")
    lf = parse(reply)
    assert lf.label is None and "return 'SPAM'" in lf.source and "'HAM' if 'é' in t" in lf.source
    assert "'Spam' in t" in lf.source and "# 'Spam' stays" in lf.source
    # Two classes that differ only in case: no guessing, the unknown return is rejected.
    with pytest.raises(ProposalRejected, match="not classes"):
        parse_code_reply("```python\ndef label(record):\n    return 'SPAM'\n```", target="spam",
                         class_names=["spam", "Spam"], round_=1, model="m")


@pytest.mark.parametrize("reply, reason", [
    ("I cannot help with that.", "never returns a class"),
    ("```python\ndef label(record):\n    return None\n```", "never returns a class"),
    ("```python\ndef label(record):\n    if 'x' in record['text'\n", "not valid Python"),
    ("```python\nimport os\ndef label(record):\n    return os.environ.get('SECRET')\n```", "lint"),
    ("```python\ndef label(record):\n    return ().__class__.__bases__[0]\n```", "lint"),
    ("```python\ndef label(record):\n    return 'EGGS'\n```", "not classes"),
    ("```python\ndef label(record):\n    exec('1')\n    return None\n```", "lint"),
    (HOSTILE_CODE_REPLY, "no `def label(record)`"),
])
def test_bad_code_replies_are_rejected_with_a_reason(reply, reason):
    with pytest.raises(ProposalRejected) as info:
        parse(reply)
    assert reason in info.value.reason


def test_same_code_with_other_formatting_gets_the_same_name():
    a = parse("```python\ndef label(record):\n    return 'SPAM' if 'win' in record['text'] else None\n```")
    b = parse("```python\n# comment\ndef label(record):\n    return 'SPAM'  if 'win' in record['text']  else None\n```")
    assert a.name == b.name and a.fingerprint == b.fingerprint


def test_keyword_reply_parses_and_rejects_bad_parts():
    reply = "```json\n" + json.dumps({"rules": [
        {"class": "spam", "keywords": ["check out", "subscribe", "", "!!!", "x" * 80]},
        {"class": "EGGS", "keywords": ["egg"]}]}) + "\n```"
    lfs, rejected = parse_keyword_reply(reply, class_names=CLASSES, round_=1, model="m")
    assert [lf.keywords[0] for lf in lfs] == ["check out", "subscribe"]
    assert all(lf.label == "SPAM" and lf.provenance.source == "llm:keywords" for lf in lfs)
    assert any("unknown class 'EGGS'" in r for r in rejected)
    assert sum("keyword" in r for r in rejected) == 3


@pytest.mark.parametrize("reply, reason", [
    ('{"rules": [{"class": "SPAM", "keywords": ["a"', "malformed JSON"),
    ("no json here", "no JSON"),
    ('{"rules": "nope"}', "schema"),
])
def test_bad_keyword_replies(reply, reason):
    with pytest.raises(ProposalRejected) as info:
        parse_keyword_reply(reply, class_names=CLASSES, round_=1, model="m")
    assert reason in info.value.reason


def test_copied_keywords_must_occur_in_their_text():
    lfs, rejected = parse_keyword_reply('["Check out", "free iPhone"]', class_names=CLASSES, round_=1, model="m",
                                        target="SPAM", source_text="Please   check OUT my channel")
    assert [lf.keywords for lf in lfs] == [["Check out"]]
    assert rejected == ["keyword 'free iPhone': not in the text it was copied from"]


def test_copied_keywords_of_only_common_words_are_rejected():
    lfs, rejected = parse_keyword_reply('["it is", "to", "check out my", "stand for", "o\'clock"]',
                                        class_names=CLASSES, round_=1, model="m", target="SPAM",
                                        source_text="it is to check out my stand for you at 5 o'clock")
    assert [lf.keywords[0] for lf in lfs] == ["check out my", "stand for", "o'clock"]  # an apostrophe is a word
    assert [r.split(":")[0] for r in rejected] == ["keyword 'it is'", "keyword 'to'"]
    assert all("only common words" in r for r in rejected)


def test_extract_json_finds_object_after_prose():
    assert extract_json('Here you go: {"a": [1, 2]} hope it helps') == {"a": [1, 2]}


def test_a_refinement_remembers_only_the_seeds_its_prompt_listed():
    from lfagent.lf import LabelingFunction, Provenance, text_key
    from lfagent.llm.base import ChatResponse
    from lfagent.propose.llm_code import REFINE_SHOWN
    from lfagent.propose.llm_proposer import LLMProposer
    from lfagent.propose.prompting import PromptContext
    from lfagent.task import TaskSpec

    class OneReply:
        def chat_many(self, requests, on_done=None):
            self.prompt = requests[0].messages[1].content
            return [ChatResponse(text='subscribe|my channel)\\b", text):\n        return "SPAM"\n    return None\n```')]

    parent = LabelingFunction(name="llm_kw_spam_the", kind="keywords", label="SPAM", keywords=["the"],
                              provenance=Provenance(source="llm:keywords", shown=["parentkey001"]))
    false_pos = [f"the song number {i}" for i in range(REFINE_SHOWN + 7)]
    llm = OneReply()
    context = PromptContext(task=TaskSpec(name="t", classes=CLASSES, seeds="s"), examples={})
    report = LLMProposer(llm, class_names=["HAM", "SPAM"]).refine(parent, context, false_pos, ["sub to me"],
                                                                  round_=2)
    (better,) = report.added
    listed = false_pos[:REFINE_SHOWN]
    assert all(t in llm.prompt for t in listed) and false_pos[REFINE_SHOWN] not in llm.prompt
    assert set(better.provenance.shown) == {"parentkey001", text_key("sub to me"), *map(text_key, listed)}


def test_guideline_keeps_only_lines_worth_reusing():
    from lfagent.propose.guideline import clean_guideline

    classes = [("ham", "A normal personal or business message"),
               ("spam", "Unsolicited advertising, prizes, premium-rate numbers, requests to call or text back")]
    seeds = ["how much it will cost approx . per month.", "he said he had a right giggle when he saw u again!",
             "1000's flirting now! txt girl to 8007 to join", "lol! oops sorry! have fun."]
    written = "\n".join([
        "- **Ham**: Normal personal or business message",                              # restates
        '- **Cue for Spam**: "how much it will cost approx . per month. he said he had a right giggle when he '
        'saw u again!"',                                                                 # two ham seeds, merged
        '- **Cue for Spam**: "1000\'s flirting now! txt girl to 8007"',                 # a spam seed: fine
        "- Spam asks the reader to reply to a short code or claim something.",           # a real rule
        '- **Cue for Ham**: "lol! oops',                                                 # cut mid-quote
    ])
    kept, dropped = clean_guideline(written, classes=classes, seed_texts=seeds,
                                    seed_classes=[{"ham"}, {"ham"}, {"spam"}, {"ham"}], cut=True)
    assert kept.splitlines() == [written.splitlines()[2], written.splitlines()[3]]
    assert [why for _, why in dropped] == [
        "cut off at max_tokens", "restates the class descriptions the prompts already carry",
        "quotes a seed text as a cue for spam, but that seed is ham"]
    # Not cut: the last line is judged like the others (a short quote is a cue word, not a seed).
    kept, _ = clean_guideline('- ham: "lol! oops"', classes=classes, seed_texts=seeds,
                              seed_classes=[{"ham"}] * 4)
    assert kept == '- ham: "lol! oops"'
