"""Errors a user can act on: each says what went wrong and where (file, line, field)."""
from __future__ import annotations

from pathlib import Path


class LFAgentError(Exception):
    """Base class: the CLI prints these as one clear line, never a traceback."""


class InputError(LFAgentError):
    """Bad task file, bad data file or bad row."""

    def __init__(self, message: str, *, path: str | Path | None = None,
                 line: int | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path:
            where = self.path
            if line is not None:
                where += f":{line}"
        if field:
            where += f" (field {field!r})" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


class LFRejected(LFAgentError):
    """A labeling function failed a check (lint, sandbox, validation); `lf_name` names it."""

    def __init__(self, lf_name: str, reason: str):
        self.lf_name = lf_name
        self.reason = reason
        super().__init__(f"LF {lf_name!r} rejected: {reason}")


class LLMError(LFAgentError):
    """An LLM backend failed in a way retrying will not fix (bad key, unknown model, no server)."""


class BudgetExhausted(LFAgentError):
    """The run's LLM-call or token budget is spent."""


class MissingExtra(LFAgentError):
    """A feature needs an optional part of lfagent that is not installed; the message names the pip command."""


def require(module: str, *, extra: str, feature: str):
    """Import `module`, or raise MissingExtra saying which extra brings it.

    >>> require("ray", extra="ray", feature="generate --engine ray")  # doctest: +SKIP
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} needs lfagent's {extra!r} extra: pip install 'lfagent[{extra}]'") from None


class UnseededClassWarning(UserWarning):
    """The seeds hold no example of a class: it is labelled only from what else can reach it."""
