"""Recall LFs: the LLM names the cues it knows for a class, beyond the words a seed text holds.

The copy request (llm_keywords.py) only lets in words that occur in one shown seed text: safe with a
small model, but a strong model's knowledge of a class's other cues never gets in. The recall request
tells the model the task, the class and its description, and the cues the kept LFs already cover for it,
and asks for others: words, short phrases, or regular expressions. It shows no seed text, so every seed
vote of a recalled LF counts when it is judged (fold_fit.py: seed votes, agreement with the model on the
unlabeled records, meaning).

Provenance: source `llm:recall` (detail: the model), so selection and the run's records can tell recalled
cues from copied ones (`llm:keywords`); both are held to the keyword bar and the meaning check.
"""
from __future__ import annotations

import hashlib
import re

from lfagent.lf import LabelingFunction, Provenance
from lfagent.llm.base import ChatMessage, ChatRequest
from lfagent.propose.llm_keywords import _keyword_problem
from lfagent.propose.parse import ProposalRejected, extract_json
from lfagent.propose.prompting import PromptContext, clip, render, system_prompt

SOURCE = "llm:recall"
MAX_CUES = 12         # cues read from one reply; a longer list is cut, not rejected
MAX_PATTERN_CHARS = 120
MAX_COVERED = 30      # covered cues listed in the prompt (the prompt stays short)

RECALL_SCHEMA = {"type": "object",
                 "properties": {"keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                                "patterns": {"type": "array", "items": {"type": "string"}, "maxItems": 4}},
                 "required": ["keywords"]}


def covered_listing(cues: list[str], target: str) -> str:
    """The covered cues (keywords, and patterns written /like this/) as prompt lines in the notation of an
    LF's summary, at most MAX_COVERED cues; or a line saying there are none."""
    shown = [clip(cue, 80) for cue in dict.fromkeys(cues)][:MAX_COVERED]
    words = [cue for cue in shown if not (len(cue) > 2 and cue.startswith("/") and cue.endswith("/"))]
    patterns = [cue for cue in shown if cue not in words]
    lines = [f"- any of {', '.join(repr(w) for w in words[i:i + 8])} -> {target}" for i in range(0, len(words), 8)]
    lines += [f"- {pattern}i -> {target}" for pattern in patterns]
    return "\n".join(lines) or "- (none yet)"


def recall_request(context: PromptContext, target: str, *, sample: int = 0, max_tokens: int = 160) -> ChatRequest:
    description = next((c.description for c in context.task.classes if c.name == target), "") or target
    prompt = render("recall", context, target, target_description=description,
                    covered=covered_listing(context.covered.get(target, []), target))
    return ChatRequest(messages=[ChatMessage(role="system", content=system_prompt()),
                                 ChatMessage(role="user", content=prompt)],
                       temperature=0.4, max_tokens=max_tokens, json_schema=RECALL_SCHEMA, seed=sample)


def parse_recall_reply(reply: str, *, target: str, class_names: list[str], round_: int, model: str,
                       covered: list[str] = ()) -> tuple[list[LabelingFunction], list[str]]:
    """One LF per recalled keyword (kind keywords) or pattern (kind regex), all voting `target`.

    Lenient: a JSON list of strings (keywords), {"keywords": [...], "patterns": [...]}, or the copy
    request's {"rules": [{"class", "keywords"}]} (rules for another class are rejected: it was asked
    about `target`). Returns (lfs, reasons for the parts rejected); raises ProposalRejected when nothing
    in the reply can be read.
    """
    keywords, patterns, rejected = _read_reply(extract_json(reply), target, class_names)
    if len(keywords) + len(patterns) > MAX_CUES:
        rejected.append(f"{len(keywords) + len(patterns) - MAX_CUES} cues beyond the first {MAX_CUES} ignored")
        keywords = keywords[:MAX_CUES]
        patterns = patterns[:max(0, MAX_CUES - len(keywords))]
    known = {" ".join(str(c).lower().split()) for c in covered}
    lfs = []
    cslug = _slug(target, 20)
    provenance = Provenance(source=SOURCE, detail=model, round=round_)
    for keyword in keywords:
        cleaned = " ".join(keyword.split()).strip()
        problem = _keyword_problem(cleaned) or ("already covered by a kept LF" if cleaned.lower() in known else None)
        if problem:
            rejected.append(f"recalled keyword {keyword!r}: {problem}")
            continue
        lfs.append(LabelingFunction(name=f"llm_rc_{cslug}_{_slug(cleaned, 32)}", kind="keywords", label=target,
                                    keywords=[cleaned], provenance=provenance))
    for pattern in patterns:
        problem = _pattern_problem(pattern)
        if problem:
            rejected.append(f"recalled pattern {pattern!r}: {problem}")
            continue
        digest = hashlib.sha1(pattern.encode("utf-8")).hexdigest()[:8]
        lfs.append(LabelingFunction(name=f"llm_rx_{cslug}_{digest}", kind="regex", label=target, pattern=pattern,
                                    provenance=provenance))
    if not lfs and not rejected:
        raise ProposalRejected("no cues in the reply")
    return lfs, rejected


def _read_reply(data, target: str, class_names: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(keywords, patterns, rejections) from the parsed JSON, whichever of the accepted shapes it has."""
    if isinstance(data, list):
        data = {"keywords": data}
    if not isinstance(data, dict):
        raise ProposalRejected("expected a JSON list of cues or an object with `keywords`")
    rejected: list[str] = []
    keywords = _strings(data.get("keywords", data.get("cues", [])), "keywords", rejected)
    patterns = _strings(data.get("patterns", data.get("regexes", [])), "patterns", rejected)
    lookup = {name.lower(): name for name in class_names}
    rules = data.get("rules", [])
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            rejected.append("a rule that is not an object")
            continue
        named = lookup.get(str(rule.get("class", "")).strip().lower())
        if named != target:
            rejected.append(f"rule for class {rule.get('class')!r}: the request asked about {target!r}")
            continue
        keywords += _strings(rule.get("keywords", []), "keywords", rejected)
    if not keywords and not patterns and not rejected:
        raise ProposalRejected("no `keywords` or `patterns` in the reply")
    return keywords, patterns, rejected


def _strings(value, what: str, rejected: list[str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        rejected.append(f"`{what}` is not a list")
        return []
    bad = [item for item in value if not isinstance(item, str)]
    if bad:
        rejected.append(f"{len(bad)} item(s) of `{what}` are not strings")
    return [item for item in value if isinstance(item, str)]


def _pattern_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    if not re.search(r"[A-Za-z0-9]", pattern):
        return "no letters or digits"
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    if compiled.search("") is not None or compiled.search(" ") is not None:
        return "matches the empty text: it would vote on every record"
    return None


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "x"
