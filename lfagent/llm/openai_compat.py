"""`--llm openai:MODEL`: any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp, ...).

Uses the `openai` SDK with its own retries off (max_retries=0): retries, backoff and error
classification are ours, so they are testable against `tests/llm_server.py`.
"""
from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from lfagent.errors import LLMError
from lfagent.llm.base import LLM, ChatRequest, ChatResponse, LLMCallError, LLMFailure
from lfagent.llm.budget import Budget, Prices

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRYABLE_KINDS = frozenset({"rate_limit", "server_error", "timeout", "connection", "bad_response"})


class RetryPolicy(BaseModel):
    """Bounded retries with exponential backoff and jitter; Retry-After wins when sent."""
    max_attempts: int = Field(4, ge=1)
    backoff_base: float = Field(0.5, ge=0.0)     # seconds before the 2nd attempt (x2 each time)
    backoff_max: float = Field(30.0, ge=0.0)
    max_retry_after: float = Field(60.0, ge=0.0)  # never sleep longer than this for Retry-After

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * rng.random())


def _retry_after_seconds(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (number or HTTP date), else None."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def resolve_endpoint(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """(base_url, api_key) from the arguments, then OPENAI_BASE_URL / OPENAI_API_KEY."""
    base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL)
    api_key = api_key or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL:
            raise LLMError("OPENAI_API_KEY is not set: export it, or point OPENAI_BASE_URL at "
                           "an OpenAI-compatible server, or use --llm local")
        api_key = "not-needed"  # local servers (vLLM, llama.cpp) accept any key
    return base_url.rstrip("/"), api_key


class OpenAICompatLLM(LLM):
    """Chat through an OpenAI-compatible HTTP API with retries, timeouts and a concurrency cap."""

    def __init__(self, model: str | None, *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retry: RetryPolicy | None = None,
                 prices: Prices | None = None, jitter_seed: int = 0,
                 max_concurrency: int = 4, cache=None, budget: Budget | None = None,
                 on_response=None, on_failure=None, _defer_endpoint: bool = False):
        if budget is None:
            budget = Budget(prices=prices)
        elif prices is not None:
            budget.prices = prices
        super().__init__(max_concurrency=max_concurrency, cache=cache, budget=budget,
                         on_response=on_response, on_failure=on_failure)
        self.model = model or ""   # "": ask the server's /v1/models on first use
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(jitter_seed)
        self._sleep = asyncio.sleep   # tests swap this to record backoff delays
        self._client: openai.AsyncOpenAI | None = None
        self._model_lock: asyncio.Lock | None = None
        self.schema_supported = True   # flips off after the server rejects response_format
        self.base_url, self._api_key = ("", "") if _defer_endpoint else resolve_endpoint(base_url, api_key)

    @property
    def cache_namespace(self) -> str:
        return self.base_url

    def describe(self) -> str:
        return f"openai:{self.model} at {self.base_url}"

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key,
                                              timeout=self.timeout, max_retries=0)
        return self._client

    async def _aclose_backend(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _aprepare(self) -> None:
        if self.model:
            return
        self._model_lock = self._model_lock or asyncio.Lock()
        async with self._model_lock:
            if not self.model:
                self.model = await self._discover_model()

    async def _discover_model(self) -> str:
        """The first model the server lists (vLLM and llama.cpp serve one)."""
        try:
            page = await self._get_client().models.list()
            models = [m.id for m in page.data]
        except openai.APIStatusError as error:
            if error.status_code in (401, 403):
                raise self._status_failure(error, "") from error
            raise LLMError(f"cannot list models at {self.base_url} (HTTP {error.status_code}): "
                           "check OPENAI_BASE_URL, or name a model with --llm openai:MODEL") from error
        except (openai.APIError, ValueError, TypeError) as error:
            raise LLMError(f"cannot list models at {self.base_url} ({error}): name one with "
                           "--llm openai:MODEL") from error
        if not models:
            raise LLMError(f"{self.base_url} lists no models: name one with --llm openai:MODEL")
        return models[0]

    async def _acomplete(self, request: ChatRequest) -> ChatResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once(request)
            except LLMCallError as error:
                failure = error.failure
                if failure.kind not in RETRYABLE_KINDS or attempt >= self.retry.max_attempts:
                    failure = failure.model_copy(update={
                        "attempts": attempt,
                        "message": failure.message + (f" (gave up after {attempt} attempts)"
                                                      if attempt > 1 else "")})
                    final = LLMCallError(failure)
                    final.retry_after = error.retry_after
                    raise final from error.__cause__
                await self._sleep(self.retry.delay(attempt, error.retry_after, self._rng))

    def _request_kwargs(self, request: ChatRequest, with_schema: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if with_schema:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": request.json_schema}}
        return kwargs

    async def _send_once(self, request: ChatRequest) -> ChatResponse:
        with_schema = request.json_schema is not None and self.schema_supported
        try:
            completion = await self._get_client().chat.completions.create(
                **self._request_kwargs(request, with_schema))
        except openai.BadRequestError as error:
            if with_schema:
                # vLLM and llama.cpp honour json_schema; others reject it: fall back to text.
                self.schema_supported = False
                return await self._send_once(request)
            raise self._failure("bad_request", f"server rejected the request: {error.message}",
                                error) from error
        except openai.APIStatusError as error:
            raise self._status_failure(error, request.model or self.model) from error
        except openai.APITimeoutError as error:
            raise self._failure("timeout", f"no answer from {self.base_url} within "
                                f"{self.timeout:g}s", error) from error
        except openai.APIConnectionError as error:
            raise self._failure("connection", f"cannot reach {self.base_url}: {error}",
                                error) from error
        except (ValueError, TypeError) as error:  # JSONDecodeError, pydantic validation
            raise self._failure("bad_response", f"unreadable response from {self.base_url}: "
                                f"{type(error).__name__}: {str(error)[:200]}", error) from error
        return self._to_response(completion, request)

    def _to_response(self, completion: Any, request: ChatRequest) -> ChatResponse:
        if not isinstance(completion, ChatCompletion) or not completion.choices:
            raise self._failure("bad_response", f"response from {self.base_url} is not a chat "
                                f"completion: {str(completion)[:200]!r}", None)
        choice = completion.choices[0]
        text = choice.message.content if choice.message is not None else None
        if text is None:
            raise self._failure("bad_response", f"response from {self.base_url} has no message "
                                "content", None)
        usage = completion.usage
        return ChatResponse(text=text, model=completion.model or request.model or self.model,
                            prompt_tokens=usage.prompt_tokens if usage else 0,
                            completion_tokens=usage.completion_tokens if usage else 0,
                            finish_reason=choice.finish_reason)

    def _status_failure(self, error: openai.APIStatusError, model: str) -> LLMCallError:
        status = error.status_code
        if status in (401, 403):
            return self._failure("auth", f"{self.base_url} refused the API key (HTTP {status}): "
                                 "check OPENAI_API_KEY", error)
        if status == 404:
            return self._failure("not_found", f"model {model!r} not found at "
                                 f"{self.base_url} (check the model name, and that "
                                 "OPENAI_BASE_URL ends with /v1)", error)
        if status == 429:
            failure = self._failure("rate_limit", f"rate limited by {self.base_url} (HTTP 429)",
                                    error)
            failure.retry_after = _retry_after_seconds(error.response.headers)
            return failure
        if status >= 500 or status in (408, 409):
            return self._failure("server_error", f"{self.base_url} failed with HTTP {status}: "
                                 f"{error.message}", error)
        return self._failure("bad_request", f"{self.base_url} rejected the request with HTTP "
                             f"{status}: {error.message}", error)

    def _failure(self, kind: str, message: str, error: Exception | None) -> LLMCallError:
        status = getattr(error, "status_code", None)
        return LLMCallError(LLMFailure(kind=kind, message=message, status_code=status))
