"""Kept LFs as a readable, editable Python module, and loading it back.

The module is data, not code the host runs: loading parses it with `ast` and reads the `LFS` list with
`ast.literal_eval`. Code LFs keep their Python as a string that only the sandbox executes.
"""
from __future__ import annotations

import ast
import pprint
from pathlib import Path

from lfagent.errors import InputError
from lfagent.lf import LabelingFunction
from lfagent.task import TaskSpec

HEADER = '''"""Labeling functions kept by lfagent (run {run_id}) for task {task}.

Edit freely: change keywords, patterns, thresholds or code, delete entries, add new ones.
Load back with `lfagent.load_lfs("{filename}")` or `lfagent repl TASK --lfs {filename}`.
This file is read as data (ast.literal_eval), never imported; `source` strings run only in the sandbox.
"""

LFS = [
'''


def _entry(lf: LabelingFunction) -> str:
    data = lf.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("kind", lf.kind)
    source = data.pop("source", None)
    body = "    " + pprint.pformat(data, indent=1, width=110, sort_dicts=False).replace("\n", "\n    ")
    if source is not None:  # the code starts at column 0 so it reads (and edits) as ordinary Python
        body = body[:-1] + f",\n     'source': '''\n{_escape(source)}'''}}"
    return body + ",\n"


def _escape(source: str) -> str:
    return source.replace("\\", "\\\\").replace("'''", "\\'\\'\\'")


def write_lf_module(path: Path, lfs: list[LabelingFunction], *, task: TaskSpec, run_id: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(run_id=run_id, task=task.name, filename=path.name)
    text += "".join(_entry(lf) for lf in lfs) + "]\n"
    path.write_text(text, encoding="utf-8")
    return path


def load_lfs(path: str | Path) -> list[LabelingFunction]:
    """Read an exported LF module back (without running it)."""
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise InputError(f"cannot read LF module: {exc}", path=path, line=getattr(exc, "lineno", None)) from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LFS" for t in node.targets):
            try:
                entries = ast.literal_eval(node.value)
            except ValueError as exc:
                raise InputError(f"LFS must be plain data (lists, dicts, strings, numbers): {exc}", path=path,
                                 line=node.lineno) from None
            return [_validate(entry, path, node) for entry in entries]
    raise InputError("no `LFS = [...]` list found", path=path)


def _validate(entry, path: Path, node) -> LabelingFunction:
    if isinstance(entry, dict) and isinstance(entry.get("source"), str):
        entry = {**entry, "source": entry["source"].lstrip("\n")}
    try:
        return LabelingFunction.model_validate(entry)
    except ValueError as exc:
        name = entry.get("name") if isinstance(entry, dict) else None
        raise InputError(f"bad LF {name!r}: {str(exc).splitlines()[-1].strip()}", path=path, line=node.lineno,
                         field="LFS") from None
