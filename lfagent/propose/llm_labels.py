"""Record labels from the LLM: several records per request, replies read leniently.

A reply may be numbered lines ("1. spam", "2) HAM", "[3] **Spam**"), a JSON object ({"1": "spam"}) or list
(["spam", "ham"], [{"id": 1, "label": "spam"}]), or, for one record, a bare class name; any case. A record
the model will not label (no answer, "unknown", a name that is no class) is left out, never guessed.
"""
from __future__ import annotations

import re

from lfagent.llm.base import ChatMessage, ChatRequest
from lfagent.propose.parse import ProposalRejected, extract_json
from lfagent.propose.prompting import PromptContext, clip, render, template

MAX_RECORD_CHARS = 400  # a record's text in the prompt; longer ones are clipped with "..."
TOKENS_PER_RECORD = 16  # room in the reply for "12. CLASS_NAME" and a little chatter
LABEL_KEYS = ("label", "class", "category", "answer", "prediction")
NUMBER_KEYS = ("id", "number", "record", "index", "n")
NUMBERED_LINE = re.compile(r"^\s*(?:record\s*)?(?:\[(\d{1,4})\]|\(?(\d{1,4})\s*[.):\-]|#(\d{1,4})\b)\s*(.*)$",
                           re.IGNORECASE)


def labels_request(context: PromptContext, texts: list[str], *, seed: int = 0) -> ChatRequest:
    """One request asking for the class of each text (numbered from 1)."""
    records = "\n".join(f"{i}. {clip(text, MAX_RECORD_CHARS)}" for i, text in enumerate(texts, 1))
    prompt = render("annotate", context, records=records, example_class=context.task.class_names[0])
    return ChatRequest(messages=[ChatMessage(role="system", content=template("annotate_system").template.strip()),
                                 ChatMessage(role="user", content=prompt)],
                       temperature=0.0, max_tokens=TOKENS_PER_RECORD * len(texts) + 32, seed=seed)


def parse_labels(reply: str, n: int, class_names: list[str]) -> dict[int, str]:
    """Record position (0-based, < n) -> class name, for the records the reply labels with a known class."""
    return _from_json(reply, n, class_names) or _from_lines(reply, n, class_names)  # "[3] spam" starts a JSON list


def class_named(answer, class_names: list[str]) -> str | None:
    """The class an answer names: the whole answer, any case, without quotes, brackets or markdown; else the
    one class named as a word in it ("Label: spam."). None when it names none, or several."""
    if not isinstance(answer, str):
        return None
    cleaned = re.sub(r"^[\s\"'`*_\[(]+|[\s\"'`*_\]).,;:!]+$", "", answer).strip()
    by_lower = {name.lower(): name for name in class_names}
    if cleaned.lower() in by_lower:
        return by_lower[cleaned.lower()]
    if re.search(r"\bnot\b|n't\b|\bunknown\b", answer, re.IGNORECASE):  # "not spam" names spam, meaning ham
        return None
    named = {name for name in class_names
             if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", answer, re.IGNORECASE)}
    return named.pop() if len(named) == 1 else None


def _from_json(reply: str, n: int, class_names: list[str]) -> dict[int, str] | None:
    if "{" not in reply and "[" not in reply:
        return None
    try:
        data = extract_json(reply)
    except ProposalRejected:
        return None  # "1. [spam]" is not JSON: read it as lines
    if isinstance(data, dict):
        for key in ("labels", "records", "answers", "results"):  # {"labels": [...]} or {"labels": {...}}
            if isinstance(data.get(key), (list, dict)):
                data = data[key]
                break
    pairs = []
    if isinstance(data, dict):
        if n == 1 and any(k in data for k in LABEL_KEYS):
            pairs = [(1, _label_field(data))]
        else:
            pairs = [(key, _label_field(value) if isinstance(value, dict) else value) for key, value in data.items()]
    elif isinstance(data, list):
        for position, item in enumerate(data, 1):
            if isinstance(item, dict):
                number = next((item[k] for k in NUMBER_KEYS if k in item), position)
                pairs.append((number, _label_field(item)))
            else:
                pairs.append((position, item))
    else:
        return None
    out = {}
    for number, answer in pairs:
        position = _position(number, n)
        name = class_named(answer, class_names)
        if position is not None and name is not None:
            out.setdefault(position, name)
    return out


def _label_field(item: dict):
    return next((item[k] for k in LABEL_KEYS if k in item), None)


def _position(number, n: int) -> int | None:
    try:
        position = int(str(number).strip().lstrip("#")) - 1
    except ValueError:
        return None
    return position if 0 <= position < n else None


def _from_lines(reply: str, n: int, class_names: list[str]) -> dict[int, str]:
    lines = [line for line in reply.splitlines() if line.strip()]
    out: dict[int, str] = {}
    numbered = [(m, line) for line in lines if (m := NUMBERED_LINE.match(line))]
    for match, _ in numbered:
        position = _position(next(g for g in match.groups()[:3] if g), n)
        name = class_named(match.group(4), class_names)
        if position is not None and name is not None:
            out.setdefault(position, name)
    if numbered:
        return out
    if n == 1:  # a bare class name, perhaps in a sentence
        name = class_named(reply, class_names)
        return {0: name} if name else {}
    if len(lines) == n:  # one bare class name per line, in order
        return {i: name for i, line in enumerate(lines) if (name := class_named(line, class_names))}
    return {}
