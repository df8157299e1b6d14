"""The simulated expert and liar LLMs of evals/simulated: a real OpenAI-compatible server that lfagent's own
client talks to, answering every kind of lfagent prompt in a form lfagent's parsers accept."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from evals.simulated.knowledge import build_knowledge, knowledge_for_draw
from evals.simulated.persona import EXPERT, LIAR, Persona
from evals.simulated.prompts import read_request
from evals.simulated.server import SimulatedLLMServer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED_DATA / "wrench-sms").is_dir(), reason="shared data not present")


# ---- helpers -----------------------------------------------------------------------------------------

def _setting(name: str):
    from evals.datasets import load_dataset, make_draw

    data = load_dataset(name, SHARED_DATA)
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=0)
    return data, draw, knowledge_for_draw(data, draw)


@pytest.fixture(scope="module")
def sms():
    return _setting("sms")


@pytest.fixture(scope="module")
def trec():
    return _setting("trec")


def _context(data, draw, *, guideline: str = "", current_lfs=()):
    from lfagent.propose.prompting import PromptContext
    from lfagent.task import ClassSpec, TaskSpec

    task = TaskSpec(name=data.name, description=data.description, seeds="seeds.jsonl",
                    classes=[ClassSpec(name=c, description=data.class_descriptions.get(c, "")) for c in data.class_names])
    examples = {c: [data.train.texts[i] for i in draw.seed_rows if data.train.y[i] == k][:3]
                for k, c in enumerate(data.class_names)}
    return PromptContext(task=task, examples=examples, guideline=guideline, current_lfs=list(current_lfs))


def _body(request, model: str) -> dict:
    """The JSON body lfagent's openai backend sends for a ChatRequest (for calls without HTTP)."""
    body = {"model": model, "messages": [m.model_dump() for m in request.messages], "seed": request.seed}
    if request.json_schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": request.json_schema}}
    return body


def _seeds(data, draw):
    return [data.train.texts[i] for i in draw.seed_rows], data.train.y[draw.seed_rows]


def _code_votes(source: str, texts: list[str]) -> list[str | None]:
    namespace: dict = {}
    exec(compile(source, "<simulated lf>", "exec"), namespace)  # our own generated code, parsed by lfagent first
    return [namespace["label"]({"text": t}) for t in texts]


def _regex_words(source: str) -> list[str]:
    match = re.search(r'\(\?<!\\w\)\((.*)\)\(\?!\\w\)', source)
    return [w.replace("\\s+", " ").replace("\\", "") for w in match.group(1).split("|")] if match else []


def _labels_prompt(data, texts: list[str]) -> str:
    listing = "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))
    return (f"{data.description}\nClasses: {', '.join(data.class_names)}\n\nLabel these records:\n{listing}\n\n"
            "For each record, answer with its number and its class name, one per line.")


# ---- the real client path ----------------------------------------------------------------------------

@needs_data
def test_lfagent_openai_backend_gets_parseable_answers_of_every_kind(sms):
    from lfagent.llm import ChatMessage, ChatRequest, LLMFailure, make_llm
    from lfagent.propose.llm_code import code_request, parse_code_reply, refine_request
    from lfagent.propose.llm_concepts import concept_request, parse_concepts
    from lfagent.propose.llm_keywords import keyword_request, parse_keyword_reply
    from lfagent.propose.llm_recall import parse_recall_reply, recall_request
    from lfagent.propose.prompting import render, system_prompt
    from lfagent.propose.guideline import clean_guideline

    data, draw, knowledge = sms
    names = data.class_names
    context = _context(data, draw)
    covered = [cue.phrase for cue in knowledge.cues[names.index("spam")][:4]]
    context.covered = {"spam": covered}
    spam_seed = context.examples["spam"][0]
    requests = {
        "guideline": ChatRequest(messages=[ChatMessage(role="system", content=system_prompt()),
                                           ChatMessage(role="user", content=render("guideline", context))], seed=0),
        "code": code_request(context, "spam", sample=0),
        "keywords": keyword_request(context, "spam", spam_seed),
        "concepts": concept_request(context, "spam"),
        "recall": recall_request(context, "spam"),
    }
    with SimulatedLLMServer(knowledge, EXPERT) as server, server.environment():
        llm = make_llm("openai")   # no model named: it asks GET /v1/models, as with vLLM or llama.cpp
        try:
            replies = dict(zip(requests, llm.chat_many(list(requests.values()))))
            assert not [r for r in replies.values() if isinstance(r, LLMFailure)]
            assert llm.model == server.model and llm.usage().calls == len(requests)

            guideline, dropped = clean_guideline(replies["guideline"].text, classes=[(c, "") for c in names],
                                                 seed_texts=[], seed_classes=[])
            assert guideline.count("\n") >= 1 and not dropped
            lf = parse_code_reply(replies["code"].text, target="spam", class_names=names, round_=1, model=llm.model)
            assert lf.label == "spam"
            lfs, rejected = parse_keyword_reply(replies["keywords"].text, class_names=names, round_=1,
                                                model=llm.model, target="spam", source_text=spam_seed)
            assert lfs and all(k.label == "spam" for k in lfs)
            assert len(parse_concepts(replies["concepts"].text, "spam").phrases()) >= 2
            recalled, rejected = parse_recall_reply(replies["recall"].text, target="spam", class_names=names,
                                                    round_=1, model=llm.model, covered=covered)
            assert recalled and not rejected and all(lf.provenance.source == "llm:recall" for lf in recalled)
            assert not {k for lf in recalled for k in lf.keywords} & set(covered)   # others than those listed

            refine = refine_request(context, lf, [context.examples["ham"][0]], [spam_seed], sample=1)
            better = parse_code_reply(llm.chat(refine).text, target="spam", class_names=names, round_=2,
                                      model=llm.model, parent=lf.name)
            assert better.label == "spam" and better.source != lf.source
        finally:
            llm.close()
    assert server.stats["by_kind"] == {"guideline": 1, "code": 2, "keywords": 1, "concepts": 1, "recall": 1}


@needs_data
def test_records_are_labelled_one_or_several_per_request_through_the_client(sms):
    from evals.systems import parse_class_answer, zeroshot_prompt
    from lfagent.llm import ChatRequest, make_llm

    data, draw, knowledge = sms
    texts, gold = list(data.test.texts[:6]), data.test.y[:6]
    expert = SimulatedLLMServer(knowledge, Persona("expert", flip_rate=0.0))
    with expert, expert.environment():
        llm = make_llm(expert.llm_spec)
        try:
            single = [llm.chat(ChatRequest.from_prompt(zeroshot_prompt(t, data), temperature=0.0)).text for t in texts]
            several = llm.chat(ChatRequest.from_prompt(_labels_prompt(data, texts))).text
        finally:
            llm.close()
    assert [parse_class_answer(a, data.class_names, multi_label=False) for a in single] == [[int(y)] for y in gold]
    lines = dict(line.split(". ", 1) for line in several.splitlines())
    assert [lines[str(i)] for i in range(1, 7)] == [data.class_names[y] for y in gold]

    liar = SimulatedLLMServer(knowledge, LIAR)
    answers = [liar.reply({"messages": [{"role": "user", "content": zeroshot_prompt(t, data)}]}) for t in texts]
    assert all(a != data.class_names[y] and a in data.class_names for a, y in zip(answers, gold))


def test_bad_requests_get_openai_style_errors():
    import openai

    knowledge = build_knowledge(["A", "B"], ["alpha one", "beta two"], np.eye(2, dtype=bool))
    with SimulatedLLMServer(knowledge) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError):
            client.post("/chat/completions", body={"model": server.model}, cast_to=dict)


# ---- what the personas say ---------------------------------------------------------------------------

@needs_data
def test_liar_keyword_and_code_lfs_vote_the_wrong_class_on_seeds(sms):
    from lfagent.sandbox.apply import keyword_regex
    from lfagent.propose.llm_code import code_request, parse_code_reply
    from lfagent.propose.llm_keywords import keyword_request, parse_keyword_reply

    data, draw, knowledge = sms
    names = data.class_names
    seed_texts, seed_y = _seeds(data, draw)
    context = _context(data, draw)

    def keyword_accuracy(persona, target):
        server = SimulatedLLMServer(knowledge, persona)
        right = votes = 0
        for text in [t for t, y in zip(seed_texts, seed_y) if names[y] == target][:8]:
            reply = server.reply(_body(keyword_request(context, target, text), server.model))
            lfs, _ = parse_keyword_reply(reply, class_names=names, round_=1, model="m", target=target, source_text=text)
            for lf in lfs:
                hits = [y for t, y in zip(seed_texts, seed_y) if t != text and keyword_regex(tuple(lf.keywords)).search(t)]
                votes += len(hits)
                right += sum(names[y] == lf.label for y in hits)
        return right / max(votes, 1), votes

    # Where the seed text holds no word of the other class, the liar recalls such words instead, which the
    # parser rejects as not copied: those cast no vote.
    liar = [keyword_accuracy(LIAR, target) for target in names]
    assert sum(votes for _, votes in liar) >= 5 and all(accuracy < 0.5 for accuracy, _ in liar), liar
    honest_accuracy, _ = keyword_accuracy(Persona("honest", decoy_rate=0.0), "spam")
    assert honest_accuracy > 0.8

    for target in names:
        server = SimulatedLLMServer(knowledge, LIAR)
        lf = parse_code_reply(server.reply(_body(code_request(context, target, sample=0), server.model)),
                              target=target, class_names=names, round_=1, model="m")
        votes = [(v, names[y]) for v, y in zip(_code_votes(lf.source, seed_texts), seed_y) if v is not None]
        assert votes and sum(v == y for v, y in votes) / len(votes) < 0.5, (target, votes[:5])


@needs_data
def test_decoy_and_flip_rates_hold_over_hundreds_of_requests(trec):
    from lfagent.propose.llm_code import code_request

    data, draw, knowledge = trec
    names = data.class_names
    server = SimulatedLLMServer(knowledge, EXPERT)
    context = _context(data, draw)
    wrong = asked = 0
    for sample in range(60):
        for target in names:
            source = server.reply(_body(code_request(context, target, sample=sample), server.model))
            # Judge the reply by its words, not by the server's own flag: whose class do they mark?
            words = _regex_words(source)
            marks = np.mean([knowledge.lift(w) for w in words], axis=0)
            wrong += names[int(np.argmax(marks))] != target
            asked += 1
    assert asked == 360 and abs(wrong / asked - EXPERT.decoy_rate) < 0.06
    assert server.stats["decoys"] == wrong   # the flag agrees with the content

    records = list(data.test.texts[:300])
    flipped = 0
    for start in range(0, len(records), 3):   # three records a request
        reply = server.reply({"messages": [{"role": "user", "content": _labels_prompt(data, records[start:start + 3])}]})
        for line, y in zip(reply.splitlines(), data.test.y[start:start + 3]):
            flipped += line.split(". ", 1)[1] != names[y]
    assert abs(flipped / len(records) - EXPERT.flip_rate) < 0.06


@needs_data
def test_answers_are_deterministic_whatever_the_order(trec):
    from lfagent.propose.llm_code import code_request
    from lfagent.propose.llm_keywords import keyword_request

    data, draw, knowledge = trec
    context = _context(data, draw)
    bodies = [_body(code_request(context, t, sample=s), "simulated-expert") for t in data.class_names for s in range(3)]
    bodies += [_body(keyword_request(context, t, text), "simulated-expert")
               for t, texts in context.examples.items() for text in texts]
    bodies.append({"messages": [{"role": "user", "content": _labels_prompt(data, data.test.texts[:5])}]})
    first = [SimulatedLLMServer(knowledge).reply(b) for b in bodies]
    other = SimulatedLLMServer(knowledge)
    second = [other.reply(b) for b in reversed(bodies)][::-1]
    assert first == second
    assert len(set(first[:3])) > 1   # different samples of one request differ


@needs_data
def test_prompt_kinds_are_read_from_what_is_asked_not_from_exact_wording(trec):
    data, _, knowledge = trec
    names = data.class_names
    cases = [
        ("Please write a Python function label(record) that returns 'LOC' for questions about places, else None.",
         "code", "LOC"),
        ("Here is our labeling guideline draft:\n- be careful\n\nSuggest five keywords that mark class HUM questions. "
         "Answer as a JSON array.", "recall", "HUM"),   # no text to copy from: the model recalls them
        ('This question is of class HUM:\n"who was the first woman to fly across the atlantic ?"\nCopy the words '
         "in it that show its class, as a JSON list.", "keywords", "HUM"),
        ("Describe the concepts behind class NUM: its intent, key entities and typical topic phrases, as JSON.",
         "concepts", "NUM"),
        ("Draft a guideline for annotators: which cues tell DESC, ENTY, HUM, ABBR, LOC and NUM apart?",
         "guideline", None),
        ("Which class fits each question? Classes: DESC, ENTY, HUM, ABBR, LOC, NUM\n1) where is the eiffel tower ?\n"
         "2) who wrote hamlet ?", "labels", None),
        ("Question: how many legs does a spider have ?\nWhat category is this? Reply with one of DESC, ENTY, HUM, "
         "ABBR, LOC, NUM.", "labels", None),
    ]
    for prompt, kind, target in cases:
        read = read_request({"messages": [{"role": "user", "content": prompt}]}, names)
        assert (read.kind, read.target if target else None) == (kind, target), prompt
    server = SimulatedLLMServer(knowledge, Persona("expert", flip_rate=0.0))
    assert server.reply({"messages": [{"role": "user", "content": cases[5][0]}]}) == "1. LOC\n2. HUM"
    recalled = json.loads(server.reply({"messages": [{"role": "user", "content": cases[1][0]}]}))
    copied = json.loads(server.reply({"messages": [{"role": "user", "content": cases[2][0]}]}))
    assert copied and all(w in cases[2][0] for w in copied)
    assert recalled and all(float(knowledge.lift(w)[names.index("HUM")]) > 0.5 for w in recalled)


def test_knowledge_comes_from_the_rows_a_run_never_sees():
    from evals.datasets import BenchData, Draw, Split

    # "prize" marks spam only in rows the run sees (seeds, pool, test); "winner" only in the unseen rows.
    seen = ["claim your prize now", "prize draw today", "you won a prize"] * 3
    unseen = ["winner winner call now", "you are a winner txt", "winner of cash", "see you later", "ok later then",
              "later at home"]
    train = Split(ids=[f"train:{i}" for i in range(len(seen) + len(unseen))], texts=seen + unseen,
                  y=np.array([1] * len(seen) + [1, 1, 1, 0, 0, 0]))
    test = Split(ids=["test:0"], texts=["prize prize"], y=np.array([1]))
    data = BenchData(name="toy", class_names=["ham", "spam"], train=train, test=test)
    draw = Draw(seed=0, seed_rows=np.arange(0, 5), extra_rows=np.arange(5, len(seen)))
    knowledge = knowledge_for_draw(data, draw)
    spam_cues = [cue.phrase for cue in knowledge.cues[1]]
    assert "winner" in spam_cues and "prize" not in spam_cues
    assert "later" in [cue.phrase for cue in knowledge.cues[0]]
    # Record labels, unlike cues, are looked up over every labelled row.
    assert knowledge.gold("Prize  prize") == frozenset({1}) and knowledge.gold("claim your prize now") == frozenset({1})


def test_persona_rates_are_checked():
    with pytest.raises(ValueError, match="flip_rate"):
        Persona("broken", flip_rate=1.5)


def _toy_spam_draw(repeats: int, n_train: int, n_seeds: int, n_extra: int):
    """A toy spam task (8 phrases x `repeats`): its data, and a draw context with `n_seeds` seeds and
    `n_extra` other unlabeled train rows (the rest of the rows are test)."""
    from evals.datasets import BenchData, Draw, Split
    from evals.systems import DrawContext

    words = {0: ["lovely song", "great voice", "best video", "nice tune"], 1: ["check my channel", "free money",
                                                                           "subscribe now", "visit my site"]}
    texts = [f"{w} {i}" for i in range(repeats) for y in (0, 1) for w in words[y]]
    y = np.array([y for i in range(repeats) for y in (0, 1) for _ in words[y]])
    train = Split(ids=[f"train:{i}" for i in range(n_train)], texts=texts[:n_train], y=y[:n_train])
    test = Split(ids=[f"test:{i}" for i in range(len(texts) - n_train)], texts=texts[n_train:], y=y[n_train:])
    data = BenchData(name="toy", class_names=["HAM", "SPAM"], train=train, test=test, description="Spam or not.")
    draw = Draw(seed=0, seed_rows=np.arange(n_seeds), extra_rows=np.arange(n_seeds, n_seeds + n_extra))
    return data, DrawContext(data=data, draw=draw, embed=None)


def test_expert_label_all_is_a_system_with_one_call_per_record_it_labels():
    from evals.systems import run_system

    data, ctx = _toy_spam_draw(6, n_train=30, n_seeds=10, n_extra=10)
    out = run_system("expert-label-all", ctx)
    # every record lfagent would label: the 18 test rows and the draw's 10 other unlabeled rows
    assert out.llm_calls == 28 and out.test_covered.all() and out.extra["simulated"]["records"] == 28
    assert out.train_probs.shape == (10, 2) and out.train_covered.all()
    right = (np.vstack([out.test_probs, out.train_probs]).argmax(1) == np.concatenate([data.test.y,
                                                                                       data.train.y[10:20]]))
    assert right.sum() == 28 - out.extra["simulated"]["flipped"]


def test_expert_tenth_spends_a_tenth_of_label_alls_calls_and_labels_every_record(monkeypatch):
    from evals.systems import run_system

    monkeypatch.setenv("LFAGENT_EXPERT", "frozen")  # the budget is what is checked, not the fine-tune
    _, ctx = _toy_spam_draw(40, n_train=200, n_seeds=20, n_extra=180)
    out = run_system("lfagent-expert-tenth", ctx)
    stats = out.extra["simulated"]
    assert out.llm_calls == stats["requests"] == (120 + 180) // 10  # the whole budget, and no more
    # Twenty records a request: every seed and record in 16 of the 30 calls, and round 2 gets the rest.
    assert stats["by_kind"]["labels"] == (20 + 300) // 20 and stats["records"] == 320


def test_a_simulated_run_with_end_trains_the_end_model_against_the_same_server(monkeypatch):
    from types import SimpleNamespace

    import evals.systems
    from evals.simulated.systems import is_simulated

    asked = []
    monkeypatch.setattr(evals.systems, "run_lfagent",
                        lambda ctx, llm, **kw: asked.append((llm, kw)) or SimpleNamespace(extra={}))
    _, ctx = _toy_spam_draw(6, n_train=30, n_seeds=10, n_extra=10)
    evals.systems.run_system("lfagent-expert+end", ctx)
    evals.systems.run_system("lfagent-liar", ctx)
    assert [(llm.startswith("openai:"), kw["end"]) for llm, kw in asked] == [(True, True), (True, False)]
    assert is_simulated("lfagent-liar") and not is_simulated("lfagent-none+end")
    for wrong in ("expert-label-all+end", "lfagent-expert+frozen"):
        with pytest.raises(ValueError, match="takes only \\+end"):
            evals.systems.run_system(wrong, ctx)


@needs_data
def test_the_liar_gets_every_proposal_wrong_by_its_own_count(trec):
    from lfagent.propose.llm_code import code_request
    from lfagent.propose.prompting import render

    data, draw, knowledge = trec
    context = _context(data, draw)
    server = SimulatedLLMServer(knowledge, LIAR)
    guideline = server.reply({"messages": [{"role": "user", "content": render("guideline", context)}]})
    for target in data.class_names:
        server.reply(_body(code_request(context, target, sample=0), server.model))
    assert server.stats["proposals"] == server.stats["decoys"] == 1 + data.k
    # Its guideline gives some class another class's cues.
    honest = SimulatedLLMServer(knowledge, Persona("honest", decoy_rate=0.0))
    assert guideline != honest.reply({"messages": [{"role": "user", "content": render("guideline", context)}]})


@needs_data
def test_recall_the_expert_names_its_classs_cues_the_liar_another_classs(trec):
    """The recall request (no seed text shown): the expert answers cues of the class that the prompt does not
    list as covered, a decoy share of them another class's; the liar always another class's."""
    from lfagent.propose.llm_recall import parse_recall_reply, recall_request

    data, draw, knowledge = trec
    names = data.class_names
    context = _context(data, draw)
    context.covered = {t: [cue.phrase for cue in knowledge.cues[c][:3]] for c, t in enumerate(names)}

    def recalled_lfs(persona, target, sample):
        server = SimulatedLLMServer(knowledge, persona)
        reply = server.reply(_body(recall_request(context, target, sample=sample), server.model))
        assert server.stats["by_kind"] == {"recall": 1}
        lfs, _ = parse_recall_reply(reply, target=target, class_names=names, round_=1, model="m",
                                    covered=context.covered[target])
        return lfs

    def marks_target(lfs, target) -> bool:
        lift = np.mean([knowledge.lift(k) for lf in lfs for k in lf.keywords], axis=0)
        return names[int(np.argmax(lift))] == target

    expert = [(t, marks_target(recalled_lfs(EXPERT, t, s), t)) for t in names for s in range(10)]
    right = sum(ok for _, ok in expert) / len(expert)
    assert abs((1 - right) - EXPERT.decoy_rate) < 0.12, right
    for target in names:
        lfs = recalled_lfs(EXPERT, target, 0)
        assert not {k for lf in lfs for k in lf.keywords} & set(context.covered[target])
        assert not marks_target(recalled_lfs(LIAR, target, 0), target)
