"""Reading a chat request the way a capable model would: what is asked, for which class, about which texts.

Nothing here matches lfagent's exact template wording, so the prompts can keep changing. A request is read
in three parts:
- the ask: the user messages with listed material taken out (bullet and numbered lines, example lines such
  as "[spam] ...", fenced code, long quotes). Its last ~600 characters hold the instruction; the kind is the
  first of code > guideline > concepts > keywords > labels whose signal words appear there (an LF-writing
  prompt may also mention words and classes; a labeling prompt may mention neither code nor keywords).
  Words asked for with no text to copy them from (no record quoted on its own line or at length, no
  "Text:" line) are a recall: the model names the cues it knows for the class.
  A primed assistant turn that starts a `def label` function, or a JSON schema asking for `topic_phrases`
  or for a list of strings, is as good as saying it.
- the target class: the class named most in the ask, counting a mention after "class" or in quotes three
  times (the class list and the examples are listing material, so they do not count).
- the material: the longest quoted text (the record keywords are copied from), numbered records or one
  "Text:" record to label, and the listed texts of a refinement (false positives / misses).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

ASK_TAIL = 600
FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
LISTING = re.compile(r"^\s*(?:[-*•]\s|\[[^\]\n]{1,40}\]\s)")
NUMBERED = re.compile(r"^\s*(?:\[(\d{1,4})\]|\(?(\d{1,4})[.):])\s+(.*\S)")
SINGLE_RECORD = re.compile(r"^\s*(?:text|record|message|comment|question|sms|input)\s*:\s*(.+)", re.IGNORECASE)
HEADER = re.compile(r"^\s*[^\n.?!]{1,80}:\s*$")   # "Classes:", "Labeled examples:", "... kept (do not repeat them):"
QUOTE = re.compile(r'"([^"\n]{2,})"|“([^”\n]{2,})”')

KINDS = ("code", "guideline", "concepts", "keywords", "labels")  # and "recall": keywords with no text to copy from
RECORD_QUOTE_CHARS = 40  # a quote this long is a record's text, not a JSON key or a format example
SIGNALS = {
    "code": r"\bdef\s+label\b|\bpython\b|\bfunctions?\b|label\(record\)|\bregex|\bcode\b",
    "guideline": r"\bguidelines?\b|\bannotators?\b",
    "concepts": r"\bconcepts?\b|\bintent\b|topic[ _]phrases|\bentities\b",
    "keywords": r"\bkey ?words?\b|\bwords?\b|\bphrases?\b|\bcues?\b|\bterms\b",
    "labels": (r"\bclass names?\b|\bclass labels?\b|\b(?:which|what) (?:class|category|label)|\blabel (?:each|these|this|"
               r"the following|every)\b|\bclassify (?:each|these|this|the following|every)\b|\banswer with\b.*\bclass"),
}


@dataclass
class PromptRead:
    kind: str | None                      # one of KINDS, or None when nothing is asked that we know
    target: str | None                    # the class the request is about
    classes: list[str]                    # known class names, in the dataset's order
    quoted: str | None = None             # the longest quoted text (keyword copying reads it)
    records: list[tuple[str, str]] = field(default_factory=list)   # (number as written, text) to label
    listed: list[str] = field(default_factory=list)   # a refinement's listed texts (false positives, misses)
    descriptions: dict[str, str] = field(default_factory=dict)     # class -> description, when listed
    wants_json: bool = False
    avoid: list[str] = field(default_factory=list)    # words the prompt says are already covered / not wanted
    wants_keyword_object: bool = False                # the schema asks for an object with a `keywords` list


def read_request(body: dict, class_names: list[str]) -> PromptRead:
    """What an OpenAI chat-completions request body asks, given the task's class names."""
    messages = body.get("messages") or []
    user = "\n\n".join(_content(m) for m in messages if m.get("role") == "user")
    primer = "\n".join(_content(m) for m in messages if m.get("role") == "assistant")
    schema = json.dumps((body.get("response_format") or {}).get("json_schema") or {})
    ask = ask_text(user)
    records = numbered_records(user) or single_record(user)
    kind = ask_kind(ask, records=bool(records))
    if re.search(r"\bdef\s+label\b", primer):
        kind = "code"
    elif kind is None and "topic_phrases" in schema:
        kind = "concepts"
    elif kind is None and '"type": "array"' in schema and '"string"' in schema:
        kind = "keywords"
    if kind == "keywords" and not _copy_source(user):
        kind = "recall"
    tail = ask[-ASK_TAIL:].lower()
    read = PromptRead(kind=kind, target=find_target(ask, class_names), classes=list(class_names),
                      quoted=longest_quote(user), records=records,
                      listed=listed_texts(user, class_names) if _shows_a_function(user) else [],
                      descriptions=class_descriptions(user, class_names),
                      wants_json=bool(re.search(r"\bjson\b", tail)) or bool(body.get("response_format")),
                      avoid=covered_words(user),
                      wants_keyword_object='"keywords"' in schema and '"object"' in schema)
    return read


def ask_kind(ask: str, *, records: bool) -> str | None:
    """The kind of the instruction at the end of `ask` (section headers such as "Guideline:" do not count)."""
    lines = [line for line in ask.splitlines() if not HEADER.match(line)]
    tail = "\n".join(lines)[-ASK_TAIL:].lower()
    fired = [k for k in KINDS if re.search(SIGNALS[k], tail)]
    for kind in ("code", "guideline", "concepts"):
        if kind in fired:
            return kind
    if records and "labels" in fired:
        return "labels"
    if "keywords" in fired:
        return "keywords"
    return "labels" if records else None


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # the content-parts form: keep the text parts
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def ask_text(user: str) -> str:
    """The user text with listed material (bullets, examples, numbered records, code, long quotes) removed."""
    text = FENCE.sub("\n", user)
    kept = [line for line in text.splitlines() if not LISTING.match(line) and not NUMBERED.match(line)
            and not SINGLE_RECORD.match(line)]
    text = "\n".join(kept)
    return QUOTE.sub(lambda m: '"…"' if len(m.group(0)) > 40 else m.group(0), text)


def find_target(ask: str, class_names: list[str]) -> str | None:
    """The class the ask names most ("class X" and quoted "X" count three times)."""
    scores = {}
    for name in class_names:
        for flags in (0, re.IGNORECASE):
            plain = len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", ask, flags))
            strong = len(re.findall(rf"(?:\bclass\s+|[\"'`]){re.escape(name)}(?![\w-])", ask, flags))
            if plain:
                scores[name] = plain + 2 * strong + (0.5 if flags == 0 else 0)  # exact case breaks ties
                break
    if not scores:
        return None
    best = max(scores.values())
    winners = [n for n in class_names if scores.get(n) == best]
    return winners[0] if len(winners) == 1 else None


def longest_quote(user: str) -> str | None:
    """The quoted text a prompt is about: a quote standing on its own line, else the longest quote that is
    not an item of a shown JSON list (a format example such as ["word", "short phrase"])."""
    whole_lines = [m.group(1) or m.group(2) for line in user.splitlines()
                   if (m := re.fullmatch(r'\s*(?:"([^"\n]+)"|“([^”\n]+)”)\s*', line))]
    if whole_lines:
        return max(whole_lines, key=len)
    quotes = [m.group(1) or m.group(2) for m in QUOTE.finditer(user)
              if not re.search(r"[\[,]\s*$", user[:m.start()]) and not re.match(r"\s*[,\]]", user[m.end():])]
    return max(quotes, key=len) if quotes else None


def _copy_source(user: str) -> bool:
    """Whether the prompt shows a text to copy words from: a quote on its own line, a long quote, a record line."""
    whole = any(re.fullmatch(r'\s*(?:"[^"\n]+"|“[^”\n]+”)\s*', line) for line in user.splitlines())
    long_quote = any(len(m.group(1) or m.group(2)) >= RECORD_QUOTE_CHARS for m in QUOTE.finditer(user))
    return whole or long_quote or bool(single_record(user))


def numbered_records(user: str) -> list[tuple[str, str]]:
    """Records written as '1. text' / '2) text' / '[3] text' lines; a record may run over several lines."""
    records: list[list[str]] = []
    lines = user.splitlines()
    open_record = False
    for line in lines:
        match = NUMBERED.match(line)
        if match:
            records.append([match.group(1) or match.group(2), match.group(3)])
            open_record = True
        elif open_record and line.strip() and not line.lstrip().startswith(("-", "*", "#")) and line.startswith((" ", "\t")):
            records[-1][1] += " " + line.strip()   # an indented continuation line
        else:
            open_record = False
    return [(number, _unquote(text)) for number, text in records]


def single_record(user: str) -> list[tuple[str, str]]:
    for line in user.splitlines():
        match = SINGLE_RECORD.match(line)
        if match:
            return [("1", _unquote(match.group(1)))]
    return []


def class_descriptions(user: str, class_names: list[str]) -> dict[str, str]:
    found = {}
    for name in class_names:
        match = re.search(rf"^\s*[-*•]\s*{re.escape(name)}\s*[:(–-]\s*(.+?)\)?\s*$", user, re.MULTILINE)
        if match:
            found[name] = match.group(1).strip()
    return found


def covered_words(user: str) -> list[str]:
    """Words the prompt lists as already covered by labeling functions (lines such as "- name: any of 'win',
    'prize' -> spam (seed accuracy 0.9)"), so that other words are offered."""
    found = []
    for line in user.splitlines():
        if re.match(r"^\s*[-*•]\s", line) and re.search(r"->|\bvotes?\b|\baccuracy\b|\bcovered\b|\bkept\b", line):
            found += re.findall(r"'([^']{2,40})'|\"([^\"]{2,40})\"", line)
    return [a or b for a, b in found]


def _shows_a_function(user: str) -> bool:
    """The prompt shows an existing `label` function (a refinement)."""
    return any(re.search(r"\bdef\s+label\b", block) for block in FENCE.findall(user))


def listed_texts(user: str, class_names: list[str]) -> list[str]:
    """Bullet-listed texts that are neither a class's line ("- NAME: ...") nor a kept LF ("... -> NAME")."""
    names = "|".join(re.escape(n) for n in class_names)
    found = []
    for line in user.splitlines():
        if not re.match(r"^\s*[-*•]\s", line) or re.match(rf"^\s*[-*•]\s*(?:{names})\s*[:(]", line) or "->" in line:
            continue
        found.append(re.sub(r"^\s*[-*•]\s+", "", line).strip())
    return found


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text
