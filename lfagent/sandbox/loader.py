"""Load a code LF from a .py file: lint it, name it, never run it here.

Naming: the LF's name is the file stem (made a valid identifier), unless the file sets a module constant
`NAME = "..."`. `LABEL = "..."` (optional) records the class it mainly votes; the module docstring
becomes the description. Constants are read from the syntax tree, not by executing the file.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from lfagent.errors import InputError, LFRejected
from lfagent.lf import NAME_PATTERN, LabelingFunction, Provenance
from lfagent.sandbox.lint import MAX_SOURCE_CHARS, check_code_lf


def load_code_lf(path: str | Path) -> LabelingFunction:
    """Read, lint and wrap one LF file. Raises LFRejected(name, reason) if the lint fails."""
    path = Path(path)
    if not path.is_file():
        raise InputError("LF file not found", path=path)
    name = name_from_stem(path.stem)
    raw = path.read_bytes()[: 4 * MAX_SOURCE_CHARS + 1]
    if len(raw) > 4 * MAX_SOURCE_CHARS:
        raise LFRejected(name, f"file too large (limit {MAX_SOURCE_CHARS} characters)")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LFRejected(name, "file is not UTF-8 text") from None
    constants, docstring = _module_constants(source)
    if "NAME" in constants:
        name = constants["NAME"]
        if not re.match(NAME_PATTERN, name):
            raise LFRejected(name[:80], f"NAME must match {NAME_PATTERN}")
    check_code_lf(name, source)
    label = constants.get("LABEL")
    if label is not None and not label.strip():
        raise LFRejected(name, "LABEL must be a non-empty string")
    return LabelingFunction(name=name, kind="code", source=source, label=label,
                            description=(docstring or "").strip().splitlines()[0] if docstring else "",
                            provenance=Provenance(source="user", detail=str(path)))


def name_from_stem(stem: str) -> str:
    """A valid LF name from a file stem: other characters become '_', a leading digit gets 'lf_'."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "lf"
    if not re.match(r"[A-Za-z_]", name):
        name = "lf_" + name
    return name[:80]


def _module_constants(source: str) -> tuple[dict[str, str], str | None]:
    """Top-level `NAME = "..."` / `LABEL = "..."` string constants and the docstring (syntax errors: none)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}, None
    found = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("NAME", "LABEL") and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    return found, ast.get_docstring(tree)
