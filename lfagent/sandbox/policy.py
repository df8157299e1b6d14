"""What LF code may use: shared by the lint (host) and the worker (sandbox). Stdlib only, no imports of lfagent."""
from __future__ import annotations

# Modules an LF may import. The worker imports them all before it isolates itself.
ALLOWED_IMPORTS = (
    "re", "math", "string", "collections", "itertools", "functools", "unicodedata", "datetime", "json",
    "statistics", "operator", "heapq", "bisect", "difflib", "textwrap", "typing", "decimal", "fractions",
    "html",
)

# Builtins an LF may call. Everything else (open, exec, eval, compile, __import__, getattr, globals,
# vars, input, breakpoint, __build_class__, ...) is absent from the LF's namespace.
ALLOWED_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct", "ord", "pow", "print", "range",
    "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "type", "zip",
    "True", "False", "None", "NotImplemented", "Ellipsis",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError",
    "LookupError", "NotImplementedError", "OverflowError", "RuntimeError", "StopIteration", "TypeError",
    "UnicodeError", "UnicodeDecodeError", "UnicodeEncodeError", "ValueError", "ZeroDivisionError",
)

# Longest class name / label string a code LF may return when the class list is open.
MAX_LABEL_CHARS = 200
# Most distinct labels one call may produce when the class list is open.
MAX_VOCABULARY = 10_000
