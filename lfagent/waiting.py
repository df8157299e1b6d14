"""Waiting on a future without going deaf to Ctrl-C."""
from __future__ import annotations

from concurrent.futures import Future, wait
from typing import TypeVar

T = TypeVar("T")


def result_responsively(future: Future[T], slice_s: float = 0.2) -> T:
    """`future.result()`, waited for in short slices; on Ctrl-C the future is cancelled and it re-raises.

    The kernel may hand SIGINT to any thread, and Python raises KeyboardInterrupt in the main thread only
    when that thread next runs bytecode: a plain `result()` would sleep until the work is done (minutes,
    for a slow LLM or a large batch).
    """
    try:
        while not future.done():
            wait([future], timeout=slice_s)
    except KeyboardInterrupt:
        future.cancel()
        raise
    return future.result()
