"""Token and cost accounting for a run, and a call/token budget checked before each call."""
from __future__ import annotations

import threading

from pydantic import BaseModel, Field

from lfagent.errors import BudgetExhausted
from lfagent.llm.base import ChatResponse


class Prices(BaseModel):
    """US dollars per million tokens; 0 for a local model."""
    prompt_per_million: float = Field(0.0, ge=0.0)
    completion_per_million: float = Field(0.0, ge=0.0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_million
                + completion_tokens * self.completion_per_million) / 1_000_000


class LLMLimits(BaseModel):
    """What a run may spend on its LLM: calls, tokens (None: no limit) and the prices to count it in."""
    max_calls: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    prices: Prices = Prices()

    def budget(self) -> "Budget":
        return Budget(max_calls=self.max_calls, max_tokens=self.max_tokens, prices=self.prices)


class UsageSummary(BaseModel):
    calls: int = 0              # calls sent to the backend (including failed ones)
    failed_calls: int = 0
    cached_calls: int = 0       # answered from the cache: free, not counted in `calls`
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    max_calls: int | None = None
    max_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Budget:
    """Counts calls and tokens; `reserve()` before a call raises BudgetExhausted when spent.

    Calls in flight count against `max_calls` from the moment they are reserved, so concurrent
    callers cannot overshoot it; `max_tokens` is checked against tokens already used, so calls
    in flight when it is reached may overshoot it by their own size.
    """

    def __init__(self, *, max_calls: int | None = None, max_tokens: int | None = None,
                 prices: Prices | None = None):
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.prices = prices or Prices()
        self._lock = threading.Lock()
        self._usage = UsageSummary(max_calls=max_calls, max_tokens=max_tokens)

    def remaining_calls(self) -> int | None:
        with self._lock:
            return None if self.max_calls is None else max(0, self.max_calls - self._usage.calls)

    def reserve(self) -> None:
        """Claim one call; raise BudgetExhausted if the calls or tokens are spent."""
        with self._lock:
            usage = self._usage
            if self.max_calls is not None and usage.calls >= self.max_calls:
                raise BudgetExhausted(f"LLM call budget spent: {usage.calls} of "
                                      f"{self.max_calls} calls used")
            if self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
                raise BudgetExhausted(f"LLM token budget spent: {usage.total_tokens} of "
                                      f"{self.max_tokens} tokens used")
            usage.calls += 1

    def record(self, response: ChatResponse) -> None:
        """Add the tokens and cost of a completed (reserved) call."""
        with self._lock:
            usage = self._usage
            usage.prompt_tokens += response.prompt_tokens
            usage.completion_tokens += response.completion_tokens
            usage.cost_usd += self.prices.cost(response.prompt_tokens, response.completion_tokens)

    def add_prior_usage(self, *, calls: int = 0, prompt_tokens: int = 0, completion_tokens: int = 0,
                        cost: float = 0.0) -> None:
        """Count usage from before a resume, so limits hold across the whole run."""
        with self._lock:
            usage = self._usage
            usage.calls += calls
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
            usage.cost_usd += cost

    def record_failure(self) -> None:
        with self._lock:
            self._usage.failed_calls += 1

    def record_cached(self, response: ChatResponse) -> None:
        with self._lock:
            self._usage.cached_calls += 1

    def summary(self) -> UsageSummary:
        with self._lock:
            return self._usage.model_copy()
