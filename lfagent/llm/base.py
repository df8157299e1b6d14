"""One chat interface for every LLM backend: typed requests and responses, cache, budget, hooks.

Backends implement `_acomplete(request) -> ChatResponse` and raise `LLMCallError`; everything
else (cache lookup, budget, concurrency limit, the sync wrappers, `chat_many`) lives here.

Example::

    llm = make_llm("openai:gpt-4o-mini")
    reply = llm.chat(ChatRequest.from_prompt("Name a spam keyword.", max_tokens=16))
    replies = llm.chat_many([ChatRequest.from_prompt(p) for p in prompts])  # failures inline
"""
from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import threading
import time
import weakref
from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Any, Callable, Coroutine, Literal, Sequence, TypeVar

from pydantic import BaseModel, Field

from lfagent.errors import BudgetExhausted, LLMError
from lfagent.waiting import result_responsively

T = TypeVar("T")

FailureKind = Literal["rate_limit", "server_error", "timeout", "connection", "bad_response",
                      "bad_request", "auth", "not_found", "budget"]
# Failures that say the backend is misconfigured: every other request would fail the same way.
FATAL_KINDS: frozenset[str] = frozenset({"auth", "not_found"})


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """One chat completion request. `model=None` means the backend's default model.

    Sampling at temperature > 0 is cached like any request: to draw several different samples
    give each a different `seed`.
    """
    messages: list[ChatMessage]
    model: str | None = None
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1)
    json_schema: dict[str, Any] | None = None
    seed: int | None = None

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, **options: Any) -> "ChatRequest":
        """A request with an optional system message and one user message."""
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=prompt))
        return cls(messages=messages, **options)


class ChatResponse(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    model: str = ""
    finish_reason: str | None = None   # "length" means max_tokens cut the reply short
    elapsed_s: float = 0.0


class LLMFailure(BaseModel):
    """A request that failed after retries; returned by `chat_many` in place of a response."""
    kind: FailureKind
    message: str
    attempts: int = 1
    status_code: int | None = None


class LLMCallError(LLMError):
    """A call failed (after retries where retrying made sense); `failure` has the details."""

    retry_after: float | None = None   # seconds the server asked us to wait (HTTP 429)

    def __init__(self, failure: LLMFailure):
        self.failure = failure
        super().__init__(failure.message)

    @property
    def fatal(self) -> bool:
        return self.failure.kind in FATAL_KINDS


ResponseHook = Callable[[ChatRequest, ChatResponse], None]
FailureHook = Callable[[ChatRequest, LLMFailure], None]


def canonical_request_key(request: ChatRequest, namespace: str) -> str:
    """sha256 of the full request plus the backend namespace (e.g. base URL or model file)."""
    payload = {"namespace": namespace, "request": request.model_dump(mode="json")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _LoopThread:
    """A private event loop in a daemon thread: async clients stay bound to one loop, and the
    sync API works whether or not the caller is itself inside an event loop."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for it, staying responsive to Ctrl-C (the call is cancelled)."""
        return result_responsively(self.submit(coro))

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class LLM(ABC):
    """Base class of every backend. Thread-safe; usable from sync code and from any event loop."""

    model: str = ""

    def __init__(self, *, max_concurrency: int = 4, cache=None, budget=None,
                 on_response: ResponseHook | None = None,
                 on_failure: FailureHook | None = None):
        from lfagent.llm.budget import Budget  # budget imports base: keep the cycle lazy
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.max_concurrency = max_concurrency
        self.cache = cache
        self.budget = budget if budget is not None else Budget()
        self.on_response = on_response
        self.on_failure = on_failure
        self._runner: _LoopThread | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._runner_lock = threading.Lock()
        self._closed = False
        atexit.register(_close_quietly, weakref.ref(self))

    # -- to implement ----------------------------------------------------------------------
    @abstractmethod
    async def _acomplete(self, request: ChatRequest) -> ChatResponse:
        """Send one request (model already resolved); raise LLMCallError on failure."""

    @property
    def cache_namespace(self) -> str:
        """What besides the request decides the answer (server URL, model file)."""
        return type(self).__name__

    def describe(self) -> str:
        return f"{type(self).__name__}({self.model})"

    async def _aclose_backend(self) -> None:
        """Release backend resources inside the private loop."""

    async def _aprepare(self) -> None:
        """Runs before each request, in the private loop (start a server, discover a model)."""

    # -- public API ------------------------------------------------------------------------
    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; raises LLMCallError, LLMError or BudgetExhausted."""
        runner = self._ensure_runner()
        try:
            if asyncio.get_running_loop() is runner.loop:
                return await self._achat_in_loop(request)
        except RuntimeError:
            pass
        return await asyncio.wrap_future(runner.submit(self._achat_in_loop(request)))

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Blocking `achat`."""
        return self._ensure_runner().run(self._achat_in_loop(request))

    async def achat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResponse | LLMFailure]:
        runner = self._ensure_runner()
        return await asyncio.wrap_future(runner.submit(self._achat_many_in_loop(list(requests))))

    def chat_many(self, requests: Sequence[ChatRequest], *,
                  on_done: Callable[[], None] | None = None) -> list[ChatResponse | LLMFailure]:
        """Answer many requests concurrently (at most `max_concurrency` at once), in order.

        A request that fails after retries, or finds the budget spent, comes back as an
        `LLMFailure` in its place; a misconfigured backend (bad key, unknown model) raises
        `LLMError` since every request would fail the same way. `on_done()` is called as each one ends
        (answered, cached or failed), for progress.
        """
        return self._ensure_runner().run(self._achat_many_in_loop(list(requests), on_done))

    def close(self) -> None:
        """Release the client and the private loop (and a local model server, if any)."""
        with self._runner_lock:
            if self._closed:
                return
            self._closed = True
            runner, self._runner = self._runner, None
        if runner is not None:
            try:
                runner.submit(self._aclose_backend()).result(timeout=10)
            finally:
                runner.stop()
        self._close_sync()

    def _close_sync(self) -> None:
        """Release resources that do not need the loop (subclasses)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def usage(self):
        return self.budget.summary()

    # -- internals -------------------------------------------------------------------------
    def _ensure_runner(self) -> _LoopThread:
        with self._runner_lock:
            if self._closed:
                raise LLMError(f"{self.describe()} is closed")
            if self._runner is None:
                self._runner = _LoopThread(f"lfagent-llm-{type(self).__name__}")
            return self._runner

    def _resolve(self, request: ChatRequest) -> ChatRequest:
        return request if request.model else request.model_copy(update={"model": self.model})

    async def _achat_in_loop(self, request: ChatRequest) -> ChatResponse:
        await self._aprepare()
        request = self._resolve(request)
        key = (canonical_request_key(request, self.cache_namespace)
               if self.cache is not None else None)
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.budget.record_cached(hit)
                self._notify(request, hit)
                return hit
        self.budget.reserve()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        started = time.monotonic()
        try:
            async with self._semaphore:
                response = await self._acomplete(request)
        except LLMCallError as error:
            self.budget.record_failure()
            if self.on_failure is not None:
                self.on_failure(request, error.failure)
            raise
        response = response.model_copy(update={"elapsed_s": time.monotonic() - started})
        self.budget.record(response)
        if key is not None:
            self.cache.put(key, response)
        self._notify(request, response)
        return response

    def _notify(self, request: ChatRequest, response: ChatResponse) -> None:
        if self.on_response is not None:
            self.on_response(request, response)

    async def _one_or_failure(self, request: ChatRequest, on_done=None) -> ChatResponse | LLMFailure:
        try:
            return await self._achat_in_loop(request)
        except BudgetExhausted as error:
            return LLMFailure(kind="budget", message=str(error), attempts=0)
        except LLMCallError as error:
            if error.fatal:
                raise
            return error.failure
        finally:
            if on_done is not None:
                on_done()

    async def _achat_many_in_loop(self, requests: list[ChatRequest], on_done=None) -> list[ChatResponse | LLMFailure]:
        tasks = [asyncio.ensure_future(self._one_or_failure(r, on_done)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except LLMError:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def _close_quietly(ref: "weakref.ref[LLM]") -> None:
    llm = ref()
    if llm is not None:
        try:
            llm.close()
        except Exception:  # interpreter shutdown: nothing useful to report
            pass
