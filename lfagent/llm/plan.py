"""What a run may spend on the LLM, before it starts: calls, tokens and money per kind of call.

`plan_run` walks the agent loop's schedule (lfagent/agent/rounds.py) round by round and renders the requests the
loop would send, from the real prompt templates and seeds, without a backend. The figures are upper
bounds under three stated assumptions:

- every round asks for everything it may ask for (code LFs again in later rounds, one refinement each
  round): the loop skips some of these when earlier proposals were not kept, so a run often spends less;
- completions use each request's whole `max_tokens`;
- prompt tokens are estimated (tiktoken when it is installed, else characters / 4), and parts of a prompt
  only known mid-run count at their most: the guideline at its request's max_tokens, the parent LF of a
  refinement at the code request's max_tokens, the list of kept LFs at its 12 lines, the cues a recall
  request lists as covered at their most (MAX_COVERED, each as long as a mined keyword may be).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable

from pydantic import BaseModel

from lfagent.data.dataset import Records
from lfagent.llm.base import ChatRequest
from lfagent.task import TaskSpec

KINDS = ("guideline", "code LF", "recall", "keywords", "concepts", "refine", "labels")
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per chat message, as OpenAI counts them
KEPT_LF_LINES = 12  # PromptContext shows at most this many kept LFs
KEPT_LF_LINE = "kw_{c}_0000: any of 'xxxxxxxx', 'xxxxxxxxxx', 'xxxxxxx' -> {c} (seed accuracy 0.950)"


class KindPlan(BaseModel):
    kind: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class RunPlan(BaseModel):
    kinds: list[KindPlan]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    rounds: int
    uncapped_calls: int  # what the schedule asks for before --max-llm-calls / --max-tokens
    limited_by: str | None = None  # "calls" or "tokens" when a limit stops the schedule early
    token_estimate: str = "characters / 4"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class PlannedCall(BaseModel):
    kind: str
    round: int
    batch: int  # calls of one batch are sent together (chat_many): a limit is checked before them all
    prompt_tokens: int
    completion_tokens: int


def token_counter(model: str | None = None) -> tuple[Callable[[str], int], str]:
    """(count(text) -> tokens, what it is): tiktoken's encoding when installed, else characters / 4."""
    try:
        import tiktoken

        try:
            encoding = tiktoken.encoding_for_model(model or "")
        except KeyError:
            encoding = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), f"tiktoken {encoding.name}"
    except Exception:  # not installed, or its encoding cannot be loaded offline
        return (lambda text: math.ceil(len(text) / 4)), "characters / 4"


def request_tokens(request: ChatRequest, count: Callable[[str], int]) -> int:
    tokens = sum(count(m.content) + MESSAGE_OVERHEAD_TOKENS for m in request.messages)
    if request.json_schema is not None:  # sent as response_format: the server reads it too
        tokens += count(json.dumps(request.json_schema))
    return tokens


def schedule(task: TaskSpec, seeds: Records, *, rounds: int, embed: bool, seed: int,
             count: Callable[[str], int], settings=None) -> list[PlannedCall]:
    """Every call the loop may make, in order, with its prompt and completion tokens at most."""
    from lfagent.agent.rounds import LoopSettings
    from lfagent.propose.llm_code import REFINE_SHOWN, code_request
    from lfagent.propose.llm_concepts import concept_request
    from lfagent.propose.llm_keywords import keyword_request
    from lfagent.propose.llm_proposer import guideline_request
    from lfagent.propose.llm_recall import MAX_COVERED, recall_request
    from lfagent.propose.prompting import PromptContext, choose_examples, clip, render, typical_examples

    settings = settings or LoopSettings(rounds=rounds)
    names = task.class_names
    calls: list[PlannedCall] = []
    batch = 0

    def add(kind: str, round_: int, requests: list[ChatRequest], extra: int = 0) -> None:
        nonlocal batch
        if requests:
            batch += 1
        calls.extend(PlannedCall(kind=kind, round=round_, batch=batch, prompt_tokens=request_tokens(r, count) + extra,
                                 completion_tokens=r.max_tokens) for r in requests)

    guideline = guideline_request(PromptContext(task=task, examples={}))
    guideline_tokens = guideline.max_tokens + count("Guideline:\n\n")  # its text is in every later prompt
    code_tokens = code_request(PromptContext(task=task, examples={}), names[0], sample=0).max_tokens
    longest = sorted(seeds.texts, key=len, reverse=True)[:2 * REFINE_SHOWN]
    for round_ in range(1, settings.rounds + 1):
        context = PromptContext(
            task=task, round=round_, current_lfs=[KEPT_LF_LINE.format(c=names[i % len(names)])
                                                  for i in range(KEPT_LF_LINES)],
            covered={t: [f"covered cue {t} {i:02d}" for i in range(MAX_COVERED)] for t in names},
            examples=choose_examples(seeds.texts, seeds.y, names, heldout=None, covered=None, per_class=4,
                                     seed=seed + round_, multi_label=task.multi_label),
            typical=typical_examples(seeds.texts, seeds.y, names, per_class=4, seed=seed + 1000 * round_,
                                     multi_label=task.multi_label))
        if round_ == 1:
            add("guideline", round_, [guideline_request(context)])
        add("code LF", round_, [code_request(context, t, sample=i) for i in range(settings.code_per_class)
                                for t in names], guideline_tokens)
        add("recall", round_, [recall_request(context, t, sample=i) for i in range(settings.recall_per_class)
                               for t in names], guideline_tokens)
        add("keywords", round_, [keyword_request(context, t, text) for t in names
                                 for text in (context.typical.get(t) or [None])[:max(1, settings.keyword_examples)]],
            guideline_tokens)
        if round_ == settings.concepts_in_round and embed:  # without embeddings no concept call is made
            add("concepts", round_, [concept_request(context, t) for t in names])
        listing = "\n".join(f"- {clip(t, 160)}" for t in longest[:REFINE_SHOWN])
        refine = render("refine", context, names[0], source="", false_positives=listing,
                        false_negatives="\n".join(f"- {clip(t, 160)}" for t in longest[REFINE_SHOWN:]))
        request = code_request(context, names[0], sample=0).model_copy(update={"max_tokens": 260})
        request.messages[1] = request.messages[1].model_copy(update={"content": refine})
        add("refine", round_, [request], guideline_tokens + code_tokens)
        if round_ == min(settings.annotate_after, settings.rounds) and settings.annotate > 0:
            add("labels", round_, label_requests(task, seeds, settings.annotate, settings.annotate_batch))
    return calls


def label_requests(task: TaskSpec, seeds: Records, n: int, batch: int | None = None) -> list[ChatRequest]:
    """The record-labelling requests of --annotate N, `batch` records a request (default BATCH_SIZE): every
    distinct seed, then N records whose texts are unknown before the run, counted at the longest text a prompt
    shows (agent/annotate.py)."""
    from lfagent.agent.annotate import check_batch_size
    from lfagent.lf import text_key
    from lfagent.propose.llm_labels import MAX_RECORD_CHARS, labels_request
    from lfagent.propose.prompting import PromptContext

    distinct = {text_key(text): text for text in reversed(seeds.texts)}  # the first of each, as annotate asks
    texts = [distinct[key] for key in dict.fromkeys(text_key(t) for t in seeds.texts)] + ["x" * MAX_RECORD_CHARS] * n
    context = PromptContext(task=task, examples={})
    batch = check_batch_size(batch)
    return [labels_request(context, texts[i:i + batch]) for i in range(0, len(texts), batch)]


def plan_run(task: TaskSpec, seeds: Records, *, rounds: int = 3, max_llm_calls: int | None = None,
             max_tokens: int | None = None, prices: tuple[float, float] = (0.0, 0.0), embed: bool = True,
             seed: int = 0, model: str | None = None, settings=None, annotate: int = 0,
             annotate_batch: int | None = None) -> RunPlan:
    """The most a run with these settings sends to the LLM (see the module's docstring for the bounds)."""
    count, estimate = token_counter(model)
    if settings is None:
        from lfagent.agent.annotate import BATCH_SIZE
        from lfagent.agent.rounds import LoopSettings

        settings = LoopSettings(rounds=rounds, annotate=annotate,
                                annotate_batch=BATCH_SIZE if annotate_batch is None else annotate_batch)
    planned = schedule(task, seeds, rounds=rounds, embed=embed, seed=seed, count=count, settings=settings)
    sent, limited_by, used, batch_start, last_batch = [], None, 0, 0, None
    for call in planned:
        if call.batch != last_batch:
            batch_start, last_batch = used, call.batch  # a batch is checked against tokens used before it
        if max_llm_calls is not None and len(sent) >= max_llm_calls:
            limited_by = "calls"
            break
        if max_tokens is not None and batch_start >= max_tokens:
            limited_by = "tokens"
            break
        sent.append(call)
        used += call.prompt_tokens + call.completion_tokens
    kinds = {kind: KindPlan(kind=kind) for kind in KINDS}
    for call in sent:
        row = kinds[call.kind]
        row.calls += 1
        row.prompt_tokens += call.prompt_tokens
        row.completion_tokens += call.completion_tokens
    for row in kinds.values():
        row.cost = (row.prompt_tokens * prices[0] + row.completion_tokens * prices[1]) / 1_000_000
    rows = list(kinds.values())
    return RunPlan(kinds=rows, calls=len(sent), prompt_tokens=sum(r.prompt_tokens for r in rows),
                   completion_tokens=sum(r.completion_tokens for r in rows), cost=sum(r.cost for r in rows),
                   rounds=max((c.round for c in sent), default=0), uncapped_calls=len(planned),
                   limited_by=limited_by, token_estimate=estimate)


def format_plan(plan: RunPlan, *, llm: str, prices: tuple[float, float]) -> str:
    """The plan as a table and a closing line, for the terminal."""
    lines = [f"{'call':<10} {'calls':>6} {'prompt tokens':>14} {'completion tokens':>18} {'cost USD':>10}"]
    for row in plan.kinds:
        lines.append(f"{row.kind:<10} {row.calls:>6,} {row.prompt_tokens:>14,} {row.completion_tokens:>18,} "
                     f"{row.cost:>10.4f}")
    lines.append(f"{'total':<10} {plan.calls:>6,} {plan.prompt_tokens:>14,} {plan.completion_tokens:>18,} "
                 f"{plan.cost:>10.4f}")
    limit = {"calls": f"; --max-llm-calls stops it after {plan.calls} of {plan.uncapped_calls} calls",
             "tokens": f"; --max-tokens stops it after {plan.calls} of {plan.uncapped_calls} calls "
                       "(the batch in flight when the limit is reached still finishes)"}.get(plan.limited_by, "")
    lines.append(f"dry run ({llm}, {plan.rounds} round{'s' if plan.rounds != 1 else ''}{limit}): at most {plan.calls:,} calls, "
                 f"{plan.tokens:,} tokens, ${plan.cost:.4f} at ${prices[0]:g} / ${prices[1]:g} per 1M "
                 f"prompt / completion tokens. Prompt tokens estimated as {plan.token_estimate}; completions "
                 "at each request's max_tokens. Nothing was sent.")
    return "\n".join(lines)
