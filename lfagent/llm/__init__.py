"""LLM backends behind one chat interface (used by the proposers only).

    from lfagent.llm import make_llm, ChatRequest
    llm = make_llm("auto")            # openai if OPENAI_API_KEY/OPENAI_BASE_URL set, else local
    llm.chat(ChatRequest.from_prompt("..."))
"""
from lfagent.llm.base import (LLM, ChatMessage, ChatRequest, ChatResponse, LLMCallError,
                              LLMFailure)
from lfagent.llm.budget import Budget, Prices, UsageSummary
from lfagent.llm.cache import ResponseCache
from lfagent.llm.factory import LLM_SPEC_HELP, make_llm

__all__ = ["LLM", "ChatMessage", "ChatRequest", "ChatResponse", "LLMCallError", "LLMFailure",
           "Budget", "Prices", "UsageSummary", "ResponseCache", "make_llm", "LLM_SPEC_HELP"]
