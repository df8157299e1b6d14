"""Counted progress for long steps, without printing: a stage reports its counts, a face shows them.

A stage that knows how much work it has asks `counter(progress, "embedding", total)` and advances it;
`progress` is whatever callable the face passed in. When it can show counts (faces/progress.Progress
has a `count` method) a bar appears; any other callable, or None, gets a counter that does nothing.
"""
from __future__ import annotations


class NullCounter:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def counter(progress, description: str, total: int | None, *, unit: str = "records", summary: bool = True):
    """A counter for `total` units of work (None: not known ahead), shown by `progress` if it can.
    `summary`: leave one line with the count and the rate when done (off for steps repeated many times)."""
    count = getattr(progress, "count", None)
    if callable(count):
        return count(description, total, unit=unit, summary=summary)
    return NullCounter()


def reporter(counter_):
    """(done, total) callbacks, such as Embedder.encode's, as advances of `counter_`."""
    last = [0]

    def report(done: int, total: int) -> None:
        counter_.advance(done - last[0])
        last[0] = done
    return report
