"""Which lines of an LLM-written labeling guideline are worth putting in every later prompt.

A guideline is reused in each prompt, so a bad line costs on every call. Small models often restate the
class descriptions the prompt already carries, quote a seed text as a cue for a class it does not have,
or run out of tokens mid-sentence; later prompts then copy phrases from the guideline instead of from
the text they show, so one wrong quote spreads. Such lines are dropped with a reason; what is left,
possibly nothing, is reused.
"""
from __future__ import annotations

import re

from lfagent.propose.mined import STOPWORDS, tokens

MIN_QUOTE_CHARS = 15  # a shorter quoted span is a cue word, not a quoted seed
RESTATES = 0.8  # share of a line's content words found in the class names and descriptions


def clean_guideline(text: str, *, classes: list[tuple[str, str]], seed_texts: list[str],
                    seed_classes: list[set[str]], cut: bool = False) -> tuple[str, list[tuple[str, str]]]:
    """(the lines kept, joined; [(line, why it was dropped)]).

    `classes` are (name, description) pairs; `seed_classes[i]` are the classes of `seed_texts[i]`;
    `cut`: the reply stopped at max_tokens, so its last line is unfinished.
    """
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    dropped: list[tuple[str, str]] = []
    if cut and lines:
        dropped.append((lines.pop(), "cut off at max_tokens"))
    described = {w for name, description in classes for w in _content_words(f"{name} {description}")}
    folded_seeds = [_fold(t) for t in seed_texts]
    kept = []
    for line in lines:
        reason = (_contradicts_seeds(line, [name for name, _ in classes], folded_seeds, seed_classes)
                  or _restates(line, described))
        if reason:
            dropped.append((line, reason))
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def _content_words(text: str) -> list[str]:
    return [w for w in tokens(text) if w not in STOPWORDS and any(ch.isalpha() for ch in w)]


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def _restates(line: str, described: set[str]) -> str | None:
    words = _content_words(line)
    if not words:
        return "no content words"
    if sum(w in described for w in words) >= RESTATES * len(words):
        return "restates the class descriptions the prompts already carry"
    return None


def _contradicts_seeds(line: str, class_names: list[str], folded_seeds: list[str],
                       seed_classes: list[set[str]]) -> str | None:
    """A line naming one class and quoting seed text of which none is of that class."""
    named = [c for c in class_names if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", line, re.IGNORECASE)]
    if len(named) != 1:
        return None
    for quote in re.findall(r'"([^"]+)"|“([^”]+)”', line):
        span = _fold(quote[0] or quote[1])
        if len(span) < MIN_QUOTE_CHARS:
            continue
        # The seeds it quotes: the span lies within one, or whole seeds lie within it (small models merge
        # two seeds into one "example").
        owners = [classes for folded, classes in zip(folded_seeds, seed_classes)
                  if span in folded or (len(folded) >= MIN_QUOTE_CHARS and folded in span)]
        if owners and not any(named[0] in classes for classes in owners):
            return f"quotes a seed text as a cue for {named[0]}, but that seed is {'/'.join(sorted(owners[0]))}"
    return None
