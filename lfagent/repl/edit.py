"""`edit LF`: the LF as editable text ($EDITOR), and the edited text back to an LF.

Code LFs are edited as their Python; declarative ones as the dict literal of an exported LF module
(lfagent/rundir/export.py), read back with `ast.literal_eval`, never executed.
"""
from __future__ import annotations

import ast
import os
import shlex
import subprocess
from pathlib import Path

from pydantic import ValidationError

from lfagent.errors import InputError, LFRejected
from lfagent.rundir.export import _entry
from lfagent.lf import LabelingFunction

DECLARATIVE_HEADER = ("# Edit this labeling function, save, and quit the editor to apply it.\n"
                      "# It is read as data (a Python dict literal); keep the same 'name'.\n")


def editable_text(lf: LabelingFunction) -> tuple[str, str]:
    """(text to edit, file suffix)."""
    if lf.kind == "code":
        return lf.source if lf.source.endswith("\n") else lf.source + "\n", ".py"
    return DECLARATIVE_HEADER + _entry(lf).strip().rstrip(",") + "\n", ".py"


def parse_edited(original: LabelingFunction, text: str) -> LabelingFunction:
    """The edited LF (same name); raises LFRejected with a readable reason when the text is not one."""
    if original.kind == "code":
        if not text.strip():
            raise LFRejected(original.name, "the edited source is empty")
        edited = original.model_copy(update={"source": text})
    else:
        edited = _parse_declarative(original, text)
    if edited.name != original.name:
        raise LFRejected(original.name, f"the name changed to {edited.name!r}; edits keep the name")
    if edited.provenance == original.provenance:
        # A person now owns this version: the miners must not regenerate over it, and its regex is trusted.
        edited = edited.model_copy(update={"provenance": original.provenance.model_copy(update={
            "source": "user", "detail": f"edited in the repl; was {original.provenance.source}"})})
    return edited


def _parse_declarative(original: LabelingFunction, text: str) -> LabelingFunction:
    try:
        data = ast.literal_eval(text.strip().rstrip(","))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        detail = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, SyntaxError) else str(exc).splitlines()[0]
        raise LFRejected(original.name, f"not a Python dict literal ({detail})") from None
    if not isinstance(data, dict):
        raise LFRejected(original.name, f"expected a dict, got {type(data).__name__}")
    try:
        return LabelingFunction.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "LF"
        raise LFRejected(original.name, f"{where}: {first.get('msg')}") from None


def editor_command() -> list[str]:
    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def run_editor(path: Path) -> None:
    """Open $VISUAL/$EDITOR (else vi) on `path` and wait; a failing editor leaves the LF unchanged."""
    command = editor_command() + [str(path)]
    try:
        completed = subprocess.run(command, check=False)
    except OSError as exc:
        raise InputError(f"cannot start editor {command[0]!r} ({exc.strerror}); set $EDITOR") from None
    if completed.returncode != 0:
        raise InputError(f"editor {command[0]!r} exited with status {completed.returncode}; LF unchanged")
