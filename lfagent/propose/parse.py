"""Reading LLM replies, which are untrusted input: strip fences, find the function or the JSON, or say why not.

Every function returns a value or raises `ProposalRejected(reason)`; nothing here runs the code.
"""
from __future__ import annotations

import ast
import json
import re

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
MAX_REPLY_CHARS = 40_000


class ProposalRejected(Exception):
    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def code_blocks(text: str) -> list[str]:
    """Fenced blocks in order (an unclosed last fence counts: small models often stop mid-block)."""
    return [body for _lang, body in FENCE.findall(text)]


def extract_label_function(reply: str, *, prefix: str = "") -> str:
    """The Python source defining `label(record)`.

    `prefix` is the start of the function that the prompt already wrote (the model continues it); it is
    prepended when the reply does not restate the `def label` line itself.
    """
    if len(reply) > MAX_REPLY_CHARS:
        raise ProposalRejected(f"reply too long ({len(reply)} characters)")
    candidates = code_blocks(reply) or [reply]
    for block in candidates:
        if re.search(r"^\s*def\s+label\s*\(", block, re.MULTILINE):
            return _complete_python(_from_first_code_line(block))
    if prefix and reply.strip() and not reply.lstrip().startswith("```"):
        # The model continued the primed start of the function: join the two where it left off.
        rest = reply.split("```")[0]
        for joined in (prefix + rest, prefix.rstrip() + "\n" + _indent_body(rest)):
            try:
                return _complete_python(joined)
            except ProposalRejected:
                continue
    raise ProposalRejected("no `def label(record)` function in the reply")


def _from_first_code_line(block: str) -> str:
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*(import |from |def |[A-Z_]+\s*=)", line):
            return "\n".join(lines[i:])
    return block


def _indent_body(body: str) -> str:
    lines = body.splitlines()
    if lines and not lines[0].startswith((" ", "\t")):
        lines = ["    " + line if line.strip() else line for line in lines]
    return "\n".join(lines)


def _complete_python(source: str) -> str:
    """Parse it; drop trailing chatter after the function; reject truncated or invalid code."""
    source = source.strip("\n") + "\n"
    try:
        ast.parse(source)
        return source
    except SyntaxError as first_error:
        lines = source.splitlines()
        # Models often add prose after the code: cut back line by line to the longest valid prefix.
        for end in range(len(lines) - 1, 0, -1):
            head = "\n".join(lines[:end]) + "\n"
            try:
                tree = ast.parse(head)
            except SyntaxError:
                continue
            if any(isinstance(n, ast.FunctionDef) and n.name == "label" for n in tree.body):
                return head
        raise ProposalRejected(f"not valid Python (truncated?): {first_error.msg} at line {first_error.lineno}") from None


def extract_json(reply: str):
    """The first JSON object or array in the reply (fenced or bare)."""
    if len(reply) > MAX_REPLY_CHARS:
        raise ProposalRejected(f"reply too long ({len(reply)} characters)")
    last_error = None
    for block in code_blocks(reply) + [reply]:
        start = min((i for i in (block.find("{"), block.find("[")) if i >= 0), default=-1)
        if start < 0:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(block[start:])
            return value
        except json.JSONDecodeError as exc:
            last_error = exc
        except RecursionError:  # thousands of nested brackets: hostile, or a model stuck in a loop
            raise ProposalRejected("JSON nested too deeply") from None
    if last_error is not None:
        raise ProposalRejected(f"malformed JSON (truncated?): {last_error.msg}")
    raise ProposalRejected("no JSON in the reply")
