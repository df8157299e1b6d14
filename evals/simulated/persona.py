"""The answers of a simulated LLM: an expert that knows the task's telling words and most record labels, and
gets a set share wrong on purpose; a liar is the same with every proposal and every label wrong.

Which answers are wrong is decided by a hash of the persona's seed and the request (for proposals) or the
record text (for labels), never by a shared random stream: the same request gets the same answer whatever
else the server was asked, from any thread, in any order.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from evals.simulated.knowledge import Knowledge, is_common, ngrams, normalise
from evals.simulated.prompts import PromptRead

CODE_CUES = 8        # words a code LF's regex holds
KEYWORDS_PER_REPLY = 3
MIN_COPY_LIFT = 0.3   # a copied word must mark its class at least this much (else only the best one)


@dataclass(frozen=True)
class Persona:
    """`decoy_rate`: share of proposals (one reply = one proposal) built from another class's words;
    `flip_rate`: share of known records labelled with a wrong class."""
    name: str = "expert"
    decoy_rate: float = 0.2
    flip_rate: float = 0.15
    seed: int = 0

    def __post_init__(self):
        for what, rate in (("decoy_rate", self.decoy_rate), ("flip_rate", self.flip_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"Persona {self.name!r}: {what} must be within [0, 1], got {rate}")


EXPERT = Persona("expert", decoy_rate=0.2, flip_rate=0.15)
LIAR = Persona("liar", decoy_rate=1.0, flip_rate=1.0)
PERSONAS = {"expert": EXPERT, "liar": LIAR}


def unit(*parts) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


@dataclass
class Answer:
    text: str
    kind: str | None
    target: str | None = None
    wrong: bool = False          # a decoy proposal, or (labels) at least one record labelled wrong
    records: int = 0             # records labelled
    flipped: int = 0             # of which labelled wrong on purpose


class Responder:
    """Turns a read request into a reply; see the module docstring."""

    def __init__(self, knowledge: Knowledge, persona: Persona = EXPERT):
        self.knowledge = knowledge
        self.persona = persona

    def answer(self, read: PromptRead, request_key: str) -> Answer:
        if read.kind == "labels":
            return self._labels(read)
        if read.kind == "guideline":
            text, swapped = self._guideline(request_key)
            return Answer(text, "guideline", wrong=swapped)
        if read.kind not in ("code", "keywords", "recall", "concepts"):
            return Answer("I can write labeling functions, keyword lists, concepts, guidelines, or label "
                          "records; tell me which.", read.kind)
        target = read.target or self._fallback_target(request_key)
        c = self.knowledge.class_names.index(target)
        decoy = unit(self.persona.seed, "decoy", request_key) < self.persona.decoy_rate
        source = self._other_class(c, request_key) if decoy else c
        if read.kind == "code":
            text = self._code(target, source, read, request_key)
        elif read.kind == "keywords":
            text = self._keywords(c, source, read, request_key)
        elif read.kind == "recall":
            text = self._recall(source, read, request_key)
        else:
            text = self._concepts(target, source, read, request_key)
        return Answer(text, read.kind, target, wrong=decoy)

    # -- proposals -------------------------------------------------------------------------------
    def _fallback_target(self, request_key: str) -> str:
        names = self.knowledge.class_names
        return names[int(unit("target", request_key) * len(names))]

    def _other_class(self, c: int, request_key: str) -> int:
        others = [o for o in range(self.knowledge.k) if o != c]
        return others[int(unit(self.persona.seed, "other", request_key) * len(others))] if others else c

    def _sample_cues(self, source: int, n: int, request_key: str, avoid: set[str] = frozenset()) -> list[str]:
        """`n` of the class's cues: its best half always, the rest sampled by the request (as at temperature)."""
        cues = [cue.phrase for cue in self.knowledge.cues[source] if cue.phrase not in avoid]
        sure = cues[: (n + 1) // 2]
        pool = cues[len(sure): 3 * n]
        rest = sorted(pool, key=lambda phrase: -unit(self.persona.seed, "cue", request_key, phrase))[: n - len(sure)]
        return [phrase for phrase in cues if phrase in sure or phrase in rest]   # best first

    def _code(self, target: str, source: int, read: PromptRead, request_key: str) -> str:
        avoid = set(read.avoid)
        if read.listed:  # a refinement: leave out words its false positives hold
            listed = set().union(*(ngrams(text) for text in read.listed))
            avoid |= {cue.phrase for cue in self.knowledge.cues[source] if cue.phrase in listed
                      and not self._marks(cue.phrase, source)}
        phrases = self._sample_cues(source, CODE_CUES, request_key, avoid) or self._sample_cues(source, CODE_CUES,
                                                                                                  request_key)
        if not phrases:
            phrases = [target.lower()]
        alternation = "|".join(r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in phrases)
        return ("```python\nimport re\n\n\n"
                "def label(record):\n"
                "    text = record[\"text\"].lower()\n"
                f"    if re.search(r\"(?<!\\w)({alternation})(?!\\w)\", text):\n"
                f"        return {target!r}\n"
                "    return None\n```")

    def _marks(self, phrase: str, c: int) -> bool:
        """Whether the phrase is strongly of class c (kept in a refinement even if a false positive holds it)."""
        return float(self.knowledge.precision(phrase)[c]) >= 0.95

    def _keywords(self, target: int, source: int, read: PromptRead, request_key: str) -> str:
        if read.quoted:  # copy from the text: the words in it that mark `source` most
            in_text = _copyable(read.quoted)
            lifts = sorted(((float(self.knowledge.lift(p)[source]), p) for p in in_text), key=lambda item: (-item[0], item[1]))
            # A wrong word must also be more of the wrong class than of the target (a rare class's prior is low).
            chosen = [p for lift, p in lifts if lift >= MIN_COPY_LIFT and (source == target or
                      self.knowledge.precision(p)[source] > self.knowledge.precision(p)[target])][:KEYWORDS_PER_REPLY]
            if not chosen and source != target:
                # Nothing in the text marks the wrong class: a wrong answer then recalls that class's words
                # (lfagent rejects them as not copied; they are still a wrong proposal).
                chosen = [p for p in self._sample_cues(source, 2 * KEYWORDS_PER_REPLY, request_key)
                          if not is_common(p)][:KEYWORDS_PER_REPLY]
            chosen = chosen or [p for _, p in lifts[:1]]
        else:   # asked for words with no text given: recall them
            return self._recall(source, read, request_key)
        return json.dumps(chosen)

    def _recall(self, source: int, read: PromptRead, request_key: str) -> str:
        """The cues of class `source` (the target's, or another class's for a decoy) that the prompt does not
        list as covered; an object when the request's schema asks for one with `keywords`, else a list."""
        avoid = {a.lower() for a in read.avoid}
        chosen = [p for p in self._sample_cues(source, 4 * KEYWORDS_PER_REPLY, request_key, avoid)
                  if not is_common(p) and p not in avoid][:2 * KEYWORDS_PER_REPLY]
        return json.dumps({"keywords": chosen} if read.wants_keyword_object else chosen)

    def _concepts(self, target: str, source: int, read: PromptRead, request_key: str) -> str:
        phrases = self._sample_cues(source, 12, request_key)
        entities = [p for p in phrases if not is_common(p)][:6]
        snippets = [_snippet(text, set(phrases)) for text in self.knowledge.examples[source][:12]]
        snippets = [s for s in dict.fromkeys(snippets) if s][:6]
        intent = (read.descriptions.get(self.knowledge.class_names[source])
                  or f"texts that mention {', '.join(entities[:3]) or 'its typical topics'}")
        return json.dumps({"class": target, "intent": intent[:100], "entities": entities,
                           "topic_phrases": snippets or entities})

    def _guideline(self, request_key: str) -> tuple[str, bool]:
        """(one cue line per class, whether it is a decoy: one that swaps two classes' cues)."""
        k = self.knowledge.k
        order = list(range(k))
        swapped = k > 1 and unit(self.persona.seed, "decoy", request_key) < self.persona.decoy_rate
        if swapped:
            a = int(unit(self.persona.seed, "swap", request_key) * k)
            b = (a + 1 + int(unit(self.persona.seed, "swap2", request_key) * (k - 1))) % k
            order[a], order[b] = order[b], order[a]
        lines = []
        for c, name in enumerate(self.knowledge.class_names):
            cues = [p for p in self._sample_cues(order[c], 8, request_key)][:6]
            lines.append(f"- {name}: cues such as {', '.join(repr(p) for p in cues)}")
        lines.append("- When cues of several classes appear, pick the class whose cue is the most specific.")
        return "\n".join(lines), swapped

    # -- record labels ----------------------------------------------------------------------------
    def label_of(self, text: str) -> tuple[frozenset[int], bool]:
        """(classes this persona answers for the record, whether that answer was flipped on purpose)."""
        gold = self.knowledge.gold(text)
        known = gold if gold is not None else self.knowledge.guess(text)
        key = normalise(text)
        if not unit(self.persona.seed, "flip", key) < self.persona.flip_rate or not known:
            return known, False
        wrong = [c for c in range(self.knowledge.k) if c not in known]
        if not wrong:
            return known, False
        return frozenset({wrong[int(unit(self.persona.seed, "flip-to", key) * len(wrong))]}), True

    def _labels(self, read: PromptRead) -> Answer:
        names = self.knowledge.class_names
        answers, flipped = [], 0
        for number, text in read.records:
            classes, was_flipped = self.label_of(text)
            flipped += was_flipped
            answers.append((number, ", ".join(names[c] for c in sorted(classes))))
        if read.wants_json and len(answers) > 1:
            text = json.dumps({number: label for number, label in answers})
        elif read.wants_json:
            text = json.dumps({"label": answers[0][1]})
        elif len(answers) == 1:
            text = answers[0][1]
        else:
            text = "\n".join(f"{number}. {label}" for number, label in answers)
        return Answer(text, "labels", wrong=flipped > 0, records=len(answers), flipped=flipped)


def _copyable(text: str) -> list[str]:
    """Phrases of the text a keyword reply may copy: they occur in it as written, and are not only common words."""
    folded = " ".join(text.lower().split())
    return sorted(p for p in ngrams(text) if not is_common(p) and len(p) >= 2
                  and re.search(rf"(?<!\w){re.escape(p)}(?!\w)", folded))


def _snippet(text: str, cues: set[str], width: int = 7) -> str:
    """A few words of the text around its first cue, as such texts put it."""
    found = text.split()
    lowered = [w.lower().strip(".,!?;:'\"()") for w in found]
    for i, word in enumerate(lowered):
        if word in cues or " ".join(lowered[i:i + 2]) in cues:
            start = max(0, i - width // 2)
            return " ".join(found[start:start + width])[:60]
    return " ".join(found[:width])[:60]

