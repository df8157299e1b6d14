"""`make_llm("none" | "auto" | "local" | "local:NAME_OR_PATH" | "openai:MODEL", **options)`."""
from __future__ import annotations

import os
from typing import Any

from lfagent.errors import LLMError
from lfagent.llm.base import LLM

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
LLM_SPEC_HELP = ("none | auto | local | local:qwen2.5-coder-0.5b | local:qwen2.5-coder-1.5b | "
                 "local:/path/model.gguf | openai:MODEL (uses OPENAI_API_KEY, OPENAI_BASE_URL)")


def openai_configured() -> bool:
    """True when the environment points at an OpenAI-compatible server."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def make_llm(spec: str = "auto", **options: Any) -> LLM | None:
    """Build the backend named by `spec`; None for "none".

    "auto" is openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else the embedded local
    model. Without a model name, openai uses $LFAGENT_OPENAI_MODEL, else the first model a custom
    OPENAI_BASE_URL lists (vLLM, llama.cpp), else gpt-4o-mini. `options` go to the backend
    constructor (cache, budget, on_response, max_concurrency, timeout, retry, ...).
    """
    spec = (spec or "auto").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "none" and not arg:
        return None
    if kind == "auto" and not arg:
        if openai_configured():
            kind, arg = "openai", ""
        else:
            kind = "local"
    if kind == "openai":
        from lfagent.llm.openai_compat import OpenAICompatLLM
        model = arg or os.environ.get("LFAGENT_OPENAI_MODEL")
        custom_server = bool(options.get("base_url") or os.environ.get("OPENAI_BASE_URL"))
        return OpenAICompatLLM(model or (None if custom_server else DEFAULT_OPENAI_MODEL),
                               **options)
    if kind == "local":
        from lfagent.llm.local import LocalLLM
        return LocalLLM(arg or None, **options)
    raise LLMError(f"unknown --llm {spec!r}: expected {LLM_SPEC_HELP}")
