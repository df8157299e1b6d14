"""`--llm local[:NAME_OR_PATH]`: an embedded llama.cpp server (xllamacpp) on loopback.

LocalLLM = a lazily started in-process `xllamacpp.Server` + the OpenAI-compatible client pointed
at it, so local and remote models share one code path (retries, schema, cache, budget).
"""
from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

from lfagent.errors import LLMError
from lfagent.llm.base import ChatRequest, ChatResponse
from lfagent.llm.budget import Budget, Prices
from lfagent.llm.gguf import DEFAULT_LOCAL_MODEL, KNOWN_MODELS, resolve_model_file
from lfagent.llm.openai_compat import OpenAICompatLLM, RetryPolicy


class LocalServerSettings:
    """llama.cpp server settings; n_ctx is shared by the `n_parallel` slots.

    `dry_multiplier` turns on llama.cpp's DRY ("don't repeat yourself") sampler for every request: small
    models fall into loops such as `love|thank you|thank you|thank you|...` inside a regex until
    max_tokens cuts the reply, and DRY penalises a repeated token sequence more the longer it runs.
    0 turns it off.
    """

    def __init__(self, *, n_ctx: int = 8192, n_threads: int = 2, n_parallel: int = 2,
                 verbosity: int = 1, dry_multiplier: float = 0.8, dry_base: float = 1.75,
                 dry_allowed_length: int = 2):
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_parallel = n_parallel
        self.verbosity = verbosity  # llama.cpp logs model loading at 3; 1 keeps errors only
        self.dry_multiplier = dry_multiplier
        self.dry_base = dry_base
        self.dry_allowed_length = dry_allowed_length

    @property
    def sampler_tag(self) -> str:
        """Part of the cache namespace: answers drawn with another sampler are not reused."""
        if not self.dry_multiplier:
            return ""
        return f":dry{self.dry_multiplier:g}/{self.dry_base:g}/{self.dry_allowed_length}"


def start_llama_server(model_path: Path, alias: str, settings: LocalServerSettings):
    """Load the model and start llama.cpp's HTTP server on 127.0.0.1 (a free port)."""
    try:
        import xllamacpp
    except ImportError as error:
        raise LLMError("the local model needs lfagent's 'local' extra: pip install 'lfagent[local]', or use "
                       "--llm openai:MODEL with OPENAI_BASE_URL") from error
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.model_alias = {alias}
    params.n_ctx = settings.n_ctx
    params.n_parallel = settings.n_parallel
    params.cpuparams.n_threads = settings.n_threads
    params.cpuparams_batch.n_threads = settings.n_threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port
    params.verbosity = settings.verbosity
    # Server-wide sampling defaults: every request gets them unless it says otherwise.
    params.sampling.dry_multiplier = settings.dry_multiplier
    params.sampling.dry_base = settings.dry_base
    params.sampling.dry_allowed_length = settings.dry_allowed_length
    try:
        return xllamacpp.Server(params)
    except Exception as error:
        raise LLMError(f"could not load local model {str(model_path)!r}: {error}") from error


def local_model_identity(name_or_path: str) -> str:
    """A cache namespace for a local model, known before the model is assembled or loaded."""
    if name_or_path in KNOWN_MODELS:
        return f"local:{name_or_path}:{KNOWN_MODELS[name_or_path].sha256}"
    path = Path(name_or_path).expanduser()
    if path.is_file():
        stat = path.stat()
        return f"local:{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"local:{name_or_path}"


class LocalLLM(OpenAICompatLLM):
    """An embedded GGUF model; the server starts on first use and stops at close()/exit."""

    def __init__(self, name_or_path: str | None = None, *,
                 settings: LocalServerSettings | None = None,
                 timeout: float = 600.0, retry: RetryPolicy | None = None,
                 prices: Prices | None = None, max_concurrency: int | None = None, cache=None, budget: Budget | None = None,
                 on_response=None, on_failure=None):
        self.settings = settings or LocalServerSettings()
        super().__init__(name_or_path or DEFAULT_LOCAL_MODEL, timeout=timeout,
                         retry=retry or RetryPolicy(max_attempts=2), prices=prices,
                         max_concurrency=max_concurrency or self.settings.n_parallel,
                         cache=cache, budget=budget, on_response=on_response,
                         on_failure=on_failure, _defer_endpoint=True)
        self._spec = name_or_path
        self.model_path: Path | None = None
        self._server = None
        self._start_lock = threading.Lock()
        self._identity = local_model_identity(self.model) + self.settings.sampler_tag

    @property
    def cache_namespace(self) -> str:
        # Not the loopback URL: its port changes every run, the model file does not.
        return self._identity

    def describe(self) -> str:
        return f"local:{self.model}" + (f" ({self.model_path})" if self.model_path else "")

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Assemble/locate the model and start the server (idempotent); return its base URL."""
        with self._start_lock:
            if self._server is None:
                name, path = resolve_model_file(self._spec)
                self.model, self.model_path = name, path
                self._server = start_llama_server(path, name, self.settings)
                self.base_url = self._server.listening_address.rstrip("/") + "/v1"
                self._api_key = "not-needed"
            return self.base_url

    async def _aprepare(self) -> None:
        if self._server is None:
            await asyncio.to_thread(self.start)  # loads in ~3 s; keep the loop responsive

    async def _acomplete(self, request: ChatRequest) -> ChatResponse:
        return await super()._acomplete(request.model_copy(update={"model": self.model}))

    def _resolve(self, request: ChatRequest) -> ChatRequest:
        # Cache keys must not depend on whether the server has started yet.
        return request.model_copy(update={"model": self._spec or DEFAULT_LOCAL_MODEL})

    def _close_sync(self) -> None:
        with self._start_lock:
            server, self._server = self._server, None
        if server is not None:
            del server
            gc.collect()  # xllamacpp stops the HTTP server when the object is freed
