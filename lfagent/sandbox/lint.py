"""AST lint for code LFs: early, readable rejections. A lint, not the boundary (the OS layers are).

A code LF is Python source defining `def label(record) -> str | None`. The lint rejects imports outside
`policy.ALLOWED_IMPORTS`, dangerous builtins, dunder and private attribute access, frame/generator
introspection, format-string attribute escapes, class definitions, attribute assignment (an LF must not
patch shared modules), huge constant powers, and sources over the size cap.
"""
from __future__ import annotations

import ast
import functools
import importlib
import string
import types

from lfagent.errors import LFRejected
from lfagent.sandbox.policy import ALLOWED_IMPORTS

MAX_SOURCE_CHARS = 20_000
MAX_SOURCE_LINES = 600
MAX_POWER_EXPONENT = 128

BANNED_NAMES = frozenset({
    "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "breakpoint", "input", "help", "exit", "quit", "memoryview", "super",
    "object", "classmethod", "staticmethod", "property", "__build_class__", "__builtins__", "__loader__",
    "__spec__", "copyright", "credits", "license",
})
# Attribute names that lead out of the allowed modules or into frames, code objects and importers.
BANNED_ATTRIBUTES = frozenset({
    "sys", "os", "builtins", "bltns", "inspect", "codecs", "types", "random", "warnings", "contextlib",
    "copyreg", "subprocess", "importlib", "ctypes", "posix", "modules", "open", "system", "popen",
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "cr_frame", "cr_code", "cr_await", "ag_frame",
    "ag_code", "tb_frame", "tb_next", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
    "co_code", "co_consts", "co_names", "mro", "format_map", "vformat", "Formatter", "loader", "spec",
    "load_module", "exec_module", "func_globals", "im_func", "im_self", "fromlist",
    # getattr/eval in disguise: attribute lookups and evaluation by (possibly computed) strings.
    "attrgetter", "methodcaller", "get_type_hints", "ForwardRef", "evaluate",
})


def lint_problems(source: str) -> list[str]:
    """Every problem found, as 'line N: what is wrong' messages; [] means the LF passes the lint."""
    return list(_lint_cached(source))


def check_code_lf(name: str, source: str) -> None:
    """Raise LFRejected(name, reason) when the lint finds problems (the reason lists the first three)."""
    problems = lint_problems(source)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LFRejected(name, "; ".join(problems[:3]) + more)


@functools.lru_cache(maxsize=4096)
def _lint_cached(source: str) -> tuple[str, ...]:
    if not isinstance(source, str):
        return ("source is not text",)
    if len(source) > MAX_SOURCE_CHARS or source.count("\n") > MAX_SOURCE_LINES:
        return (f"source too large (limit {MAX_SOURCE_CHARS} characters, {MAX_SOURCE_LINES} lines)",)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return (f"line {exc.lineno}: syntax error: {exc.msg}",)
    except (ValueError, MemoryError, RecursionError) as exc:
        return (f"cannot parse source: {type(exc).__name__}",)
    checker = _Checker()
    try:
        checker.visit(tree)
    except RecursionError:
        return ("source nests too deeply",)
    problems = checker.problems + _entry_point_problems(tree)
    return tuple(dict.fromkeys(problems))  # keep order, drop repeats


def _entry_point_problems(tree: ast.Module) -> list[str]:
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "label"]
    if not found:
        return ["must define a top-level function `def label(record):`"]
    args = found[-1].args
    positional = args.posonlyargs + args.args
    if len(positional) != 1 or args.vararg or args.kwarg or args.kwonlyargs:
        return [f"line {found[-1].lineno}: `label` must take exactly one parameter (the record)"]
    return []


@functools.lru_cache(maxsize=1)
def _module_attributes_leaving_allowlist() -> dict[str, frozenset[str]]:
    """For each allowed module, its attributes that are modules outside the allowlist (e.g. statistics.sys)."""
    leaks = {}
    for module_name in ALLOWED_IMPORTS:
        module = importlib.import_module(module_name)
        leaks[module_name] = frozenset(
            key for key, value in vars(module).items()
            if isinstance(value, types.ModuleType) and value.__name__.split(".")[0] not in ALLOWED_IMPORTS)
    return leaks


class _Checker(ast.NodeVisitor):
    def __init__(self):
        self.problems: list[str] = []
        self.module_aliases: dict[str, str] = {}  # local name -> allowed module it is bound to

    def _problem(self, node: ast.AST, message: str) -> None:
        self.problems.append(f"line {getattr(node, 'lineno', '?')}: {message}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            top = alias.name.split(".")[0]
            self.module_aliases[alias.asname or top] = alias.name if alias.asname else top
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._problem(node, "relative imports are not allowed")
            return
        self._check_module(node, node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self._problem(node, "`from ... import *` is not allowed; import the names you use")
            if alias.name.startswith("_"):
                self._problem(node, f"importing private name {alias.name!r} is not allowed")
            leaks = _module_attributes_leaving_allowlist().get((node.module or "").split(".")[0], frozenset())
            if alias.name in leaks or alias.name in BANNED_ATTRIBUTES:
                self._problem(node, f"importing {alias.name!r} from {node.module!r} is not allowed")

    def _check_module(self, node: ast.AST, module: str) -> None:
        if module.split(".")[0] not in ALLOWED_IMPORTS:
            self._problem(node, f"import of {module!r} is not allowed (allowed: {', '.join(ALLOWED_IMPORTS)})")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BANNED_NAMES:
            self._problem(node, f"use of {node.id!r} is not allowed")
        elif node.id.startswith("__"):
            self._problem(node, f"dunder name {node.id!r} is not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self._problem(node, f"access to private/dunder attribute {attr!r} is not allowed")
        elif attr in BANNED_ATTRIBUTES:
            self._problem(node, f"access to attribute {attr!r} is not allowed")
        elif isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            module = self.module_aliases[node.value.id].split(".")[0]
            if attr in _module_attributes_leaving_allowlist().get(module, frozenset()):
                self._problem(node, f"{node.value.id}.{attr} leads outside the allowed modules")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._problem(node, f"assigning or deleting attributes ({attr!r}) is not allowed in an LF")
        if attr == "format" and not _is_safe_format_string(node.value):
            self._problem(node, "str.format is only allowed on a literal without attribute/index fields; use an f-string")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "__" in node.value:
            self._problem(node, "strings containing '__' are not allowed (format-string and lookup escapes)")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._problem(node, "class definitions are not allowed in an LF")
        self.generic_visit(node)

    def _check_function(self, node) -> None:
        if node.name.startswith("__"):
            self._problem(node, f"dunder function name {node.name!r} is not allowed")
        self.generic_visit(node)

    visit_FunctionDef = _check_function
    visit_AsyncFunctionDef = _check_function

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Pow) and _constant_exponent_too_large(node.right):
            self._problem(node, f"constant power with exponent above {MAX_POWER_EXPONENT} is not allowed")
        self.generic_visit(node)


def _constant_exponent_too_large(exponent: ast.AST) -> bool:
    if isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float)):
        return abs(exponent.value) > MAX_POWER_EXPONENT
    # A power as exponent (10**10**8) grows beyond any sane bound.
    return isinstance(exponent, ast.BinOp) and isinstance(exponent.op, ast.Pow)


def _is_safe_format_string(value: ast.AST) -> bool:
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return False
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(value.value) if field]
    except ValueError:
        return False
    return not any("." in field or "[" in field for field in fields)
