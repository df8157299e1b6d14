"""Record labels from the LLM: several records per request, replies read leniently.

A reply may be numbered lines ("1. spam", "2) HAM", "[3] **Spam**"), a JSON object ({"1": "spam"}) or list
(["spam", "ham"], [{"id": 1, "label": "spam"}]), or, for one record, a bare class name; any case. A record
the model will not label (no answer, "unknown", a name that is no class) is left out, never guessed.
Multi-label tasks ask for every class that applies: a reply names several ("1. joy, surprise"), or none
("2. none"), and a record whose answer names anything that is no class is left out too.
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
    """One request asking for the class of each text (numbered from 1); every class that applies when the
    task is multi-label."""
    multi = context.task.multi_label
    records = "\n".join(f"{i}. {clip(text, MAX_RECORD_CHARS)}" for i, text in enumerate(texts, 1))
    names = context.task.class_names
    prompt = render("annotate_multi" if multi else "annotate", context, records=records, example_class=names[0],
                    example_classes=", ".join(names[:2]))
    system = template("annotate_multi_system" if multi else "annotate_system").template.strip()
    per_record = TOKENS_PER_RECORD * (3 if multi else 1)
    return ChatRequest(messages=[ChatMessage(role="system", content=system), ChatMessage(role="user", content=prompt)],
                       temperature=0.0, max_tokens=per_record * len(texts) + 32, seed=seed)


def parse_labels(reply: str, n: int, class_names: list[str]) -> dict[int, str]:
    """Record position (0-based, < n) -> class name, for the records the reply labels with a known class."""
    read = lambda answer: class_named(answer, class_names)  # noqa: E731
    return _from_json(reply, n, read) or _from_lines(reply, n, read)  # "[3] spam" starts a JSON list


def parse_label_sets(reply: str, n: int, class_names: list[str]) -> dict[int, tuple[str, ...]]:
    """Multi-label: record position -> the classes the reply gives it (in class order; empty for "none")."""
    read = lambda answer: classes_named(answer, class_names)  # noqa: E731
    return _from_json(reply, n, read) or _from_lines(reply, n, read)


NO_CLASS = re.compile(r"^\W*(?:none|no class(?:es)?|no label|nothing|neither)\W*$", re.IGNORECASE)


def classes_named(answer, class_names: list[str]) -> tuple[str, ...] | None:
    """The classes a multi-label answer names ("joy, surprise", ["joy"], "none"), in class order; None when
    any part of it names no class (a hedge or a guess is not read as a partial answer)."""
    if isinstance(answer, list):
        parts = answer
    elif isinstance(answer, str):
        if NO_CLASS.match(answer):
            return ()
        parts = [p for p in re.split(r"[,;/|&+]|\band\b", answer) if p.strip(" .*_`'\"")]
    else:
        return None
    named = [class_named(part, class_names) for part in parts]
    if not named or any(name is None for name in named):
        return None
    return tuple(name for name in class_names if name in named)


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


def _from_json(reply: str, n: int, read) -> dict | None:
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
        name = read(answer)
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


def _from_lines(reply: str, n: int, read) -> dict:
    lines = [line for line in reply.splitlines() if line.strip()]
    out: dict[int, str] = {}
    numbered = [(m, line) for line in lines if (m := NUMBERED_LINE.match(line))]
    for match, _ in numbered:
        position = _position(next(g for g in match.groups()[:3] if g), n)
        name = read(match.group(4))
        if position is not None and name is not None:
            out.setdefault(position, name)
    if numbered:
        return out
    if n == 1:  # a bare class name, perhaps in a sentence
        name = read(reply.strip())
        return {} if name is None else {0: name}
    if len(lines) == n:  # one bare class name per line, in order
        return {i: name for i, line in enumerate(lines) if (name := read(line)) is not None}
    return {}
