"""Keyword LFs from the LLM (DataSculpt-style): cheap, structured JSON, robust even for small models."""
from __future__ import annotations

import re

from pydantic import BaseModel, Field, ValidationError

from lfagent.lf import LabelingFunction, Provenance
from lfagent.llm.base import ChatMessage, ChatRequest
from lfagent.propose.mined import STOPWORDS, tokens
from lfagent.propose.parse import ProposalRejected, extract_json
from lfagent.propose.prompting import PromptContext, clip, render, system_prompt

MAX_KEYWORD_CHARS = 40


class KeywordRule(BaseModel):
    class_name: str = Field(alias="class")
    keywords: list[str] = Field(max_length=30)


class KeywordReply(BaseModel):
    rules: list[KeywordRule] = Field(max_length=40)


# DataSculpt-style: one seed text per request, and the model copies the words that show its class.
# Copying is far easier for small models than recalling cues, and a copied phrase can be checked.
KEYWORD_LIST_SCHEMA = {"type": "array", "items": {"type": "string"}, "maxItems": 5}


def keyword_request(context: PromptContext, target: str, text: str | None, *, sample: int = 0,
                    max_tokens: int = 60) -> ChatRequest:
    """Copy cue words from `text`, a seed of `target`; with `text=None` (the seeds have no example of
    `target`) recall them from the class description, since there is nothing to copy from."""
    description = next((c.description for c in context.task.classes if c.name == target), "") or target
    if text is None:
        prompt = render("keywords_unseen", context, target, target_description=description)
    else:
        prompt = render("keywords", context, target, text=clip(text, 400).replace('"', "'"),
                        target_description=description)
    return ChatRequest(messages=[ChatMessage(role="system", content=system_prompt()),
                                 ChatMessage(role="user", content=prompt)],
                       temperature=0.2, max_tokens=max_tokens,
                       json_schema=KEYWORD_LIST_SCHEMA, seed=sample)


def parse_keyword_reply(reply: str, *, class_names: list[str], round_: int, model: str, target: str | None = None,
                        source_text: str | None = None) -> tuple[list[LabelingFunction], list[str]]:
    """One keyword LF per (class, keyword); returns (lfs, reasons for the parts rejected).

    The reply is a JSON list of keywords for `target`, or {"rules": [{"class", "keywords"}]}. With
    `source_text`, a keyword must occur in it (the model was asked to copy, not to invent).
    """
    data = extract_json(reply)
    if isinstance(data, list) and all(isinstance(item, str) for item in data):
        if target is None:
            raise ProposalRejected("a bare keyword list needs the class it was asked for")
        data = {"rules": [{"class": target, "keywords": data}]}
    elif isinstance(data, list):
        data = {"rules": data}
    try:
        parsed = KeywordReply.model_validate(data)
    except ValidationError as exc:
        raise ProposalRejected(f"JSON does not match the schema: {exc.errors()[0]['msg']}") from None
    lfs, rejected = [], []
    lookup = {name.lower(): name for name in class_names}
    for rule in parsed.rules:
        class_name = lookup.get(rule.class_name.strip().lower())
        if class_name is None:
            rejected.append(f"unknown class {rule.class_name!r}")
            continue
        for keyword in rule.keywords:
            cleaned = " ".join(str(keyword).split()).strip()
            problem = _keyword_problem(cleaned, source_text)
            if problem:
                rejected.append(f"keyword {keyword!r}: {problem}")
                continue
            slug = re.sub(r"[^a-z0-9]+", "_", cleaned.lower()).strip("_")[:32]
            cslug = re.sub(r"[^a-z0-9]+", "_", class_name.lower()).strip("_")[:20]
            lfs.append(LabelingFunction(
                name=f"llm_kw_{cslug}_{slug}", kind="keywords", label=class_name, keywords=[cleaned],
                provenance=Provenance(source="llm:keywords", detail=model, round=round_)))
    if not lfs and not rejected:
        raise ProposalRejected("no keywords in the reply")
    return lfs, rejected


def _keyword_problem(keyword: str, source_text: str | None = None) -> str | None:
    if not keyword:
        return "empty"
    if source_text is not None and keyword.lower() not in " ".join(source_text.split()).lower():
        return "not in the text it was copied from"
    if len(keyword) > MAX_KEYWORD_CHARS:
        return f"longer than {MAX_KEYWORD_CHARS} characters"
    if not re.search(r"[A-Za-z0-9]", keyword):
        return "no letters or digits"
    if len(keyword) < 2:
        return "too short"
    if all(word in STOPWORDS for word in tokens(keyword) if any(ch.isalnum() for ch in word)):
        return "only common words: it would match most texts (the miner skips these too)"
    return None
