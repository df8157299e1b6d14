"""Code LFs written by the LLM, and refinements of LFs that make mistakes. The code runs only in the sandbox."""
from __future__ import annotations

import ast
import hashlib
import re

from lfagent.lf import LabelingFunction, Provenance, normalised_code
from lfagent.llm.base import ChatMessage, ChatRequest
from lfagent.propose.parse import ProposalRejected, extract_label_function
from lfagent.propose.prompting import PromptContext, clip, render, system_prompt

# The reply is primed with the start of a function (an assistant turn): small models then write task
# words into the regex instead of copying the prompt's example. Servers that continue the primed turn
# return only the rest, which is joined back to this prefix.
PROMPT_PREFIX = 'import re\n\ndef label(record):\n    text = record["text"].lower()\n    if re.search(r"\\b('
PRIMER = "```python\n" + PROMPT_PREFIX
REFINE_SHOWN = 5  # false positives, and misses, a refinement prompt lists


def _messages(prompt: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=system_prompt()), ChatMessage(role="user", content=prompt),
            ChatMessage(role="assistant", content=PRIMER)]


def code_request(context: PromptContext, target: str, *, sample: int, max_tokens: int = 160,
                 temperature: float = 0.7) -> ChatRequest:
    return ChatRequest(messages=_messages(render("code_lf", context, target)), temperature=temperature,
                       max_tokens=max_tokens, seed=sample)


def refine_request(context: PromptContext, lf: LabelingFunction, false_positives: list[str],
                   false_negatives: list[str], *, sample: int = 0, max_tokens: int = 260) -> ChatRequest:
    listing = lambda texts: "\n".join(f"- {clip(t, 160)}" for t in texts[:REFINE_SHOWN]) or "(none)"
    source = lf.source if lf.kind == "code" else _declarative_as_code(lf)
    prompt = render("refine", context, lf.label, source=source.strip(), false_positives=listing(false_positives),
                    false_negatives=listing(false_negatives))
    return ChatRequest(messages=_messages(prompt), temperature=0.5, max_tokens=max_tokens, seed=sample)


def _declarative_as_code(lf: LabelingFunction) -> str:
    if lf.kind == "keywords":
        return (f"def label(record):\n    text = record['text'].lower()\n"
                f"    if any(k in text for k in {[k.lower() for k in lf.keywords]!r}):\n"
                f"        return {lf.label!r}\n    return None\n")
    if lf.kind == "regex":
        return (f"import re\n\ndef label(record):\n    if re.search({lf.pattern!r}, record['text'], re.I):\n"
                f"        return {lf.label!r}\n    return None\n")
    return f"# votes {lf.label} by embedding similarity: {lf.summary()}\n"


def parse_code_reply(reply: str, *, target: str | None, class_names: list[str], round_: int, model: str,
                     parent: str | None = None) -> LabelingFunction:
    """A code LF from the reply, linted; raises ProposalRejected with the reason."""
    from lfagent.sandbox.lint import lint_problems

    source = extract_label_function(reply, prefix=PROMPT_PREFIX)
    problems = lint_problems(source)
    if problems:
        raise ProposalRejected("lint: " + "; ".join(problems[:3]))
    if _never_votes(source):
        raise ProposalRejected("the function never returns a class (it can only abstain)")
    source = match_class_case(source, class_names)
    voted = _returned_constants(source)
    unknown = sorted(v for v in voted if v not in class_names)
    if unknown:
        raise ProposalRejected(f"returns {unknown}, which are not classes ({class_names})")
    # The class it really returns, which is not always the one asked for (small models invert logic);
    # scoring judges it on what it votes.
    label = next(iter(voted)) if len(voted) == 1 else None
    digest = hashlib.sha1(normalised_code(source).encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "_", (label or "any").lower()).strip("_")[:20]
    return LabelingFunction(
        name=f"llm_code_{slug}_{digest}", kind="code", label=label, source=source,
        provenance=Provenance(source="llm:code", detail=model, round=round_, parent=parent),
        description=f"LLM-written code LF for {target}" + (f", refining {parent}" if parent else ""))


def _returned_nodes(source: str) -> list[ast.Constant]:
    """String constants a `return` can hand back (plain, or either side of `x if c else y`)."""
    found: list[ast.Constant] = []

    def visit(value):
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.append(value)
        elif isinstance(value, ast.IfExp):
            visit(value.body), visit(value.orelse)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Return):
            visit(node.value)
    return found


def _returned_constants(source: str) -> set[str]:
    return {node.value for node in _returned_nodes(source)}


def match_class_case(source: str, class_names: list[str]) -> str:
    """Rewrite returned strings that name a class in another case ("HAM" for "ham") to its spelling.

    Small models often upper-case class names. Only the returned literals change, in place; nothing
    is guessed when two classes differ only in case.
    """
    lookup = {name.lower(): name for name in class_names}
    if len(lookup) < len(class_names):
        return source
    lines = source.splitlines(keepends=True)
    edits = []
    for node in _returned_nodes(source):
        name = lookup.get(node.value.strip().lower())
        if name and name != node.value and node.lineno == node.end_lineno:
            edits.append((node.lineno - 1, node.col_offset, node.end_col_offset, name))
    for row, start, end, name in sorted(edits, reverse=True):  # right to left: offsets stay valid
        raw = lines[row].encode("utf-8")  # ast offsets count UTF-8 bytes
        lines[row] = (raw[:start] + repr(name).encode("utf-8") + raw[end:]).decode("utf-8")
    return "".join(lines)


def _never_votes(source: str) -> bool:
    """True when every return is missing or None: such a function can only abstain."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return False
    return True


