"""Progress on a terminal, silence when piped: the only printing helpers the faces share.

`progress(message)` prints a timestamped line. `progress.count(description, total)` (see
lfagent/counting.py, which stages call) shows a bar with the count, the rate and the time left on a
terminal; when the stream is not a terminal but progress was asked for, one plain line per finished
step instead (no escape codes in a log file).
"""
from __future__ import annotations

import sys
import threading
import time


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


class Progress:
    def __init__(self, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.tty = _isatty(self.stream)
        self.enabled = self.tty if enabled is None else enabled
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._bars = None  # a rich Progress while at least one bar is open
        self._open = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.monotonic() - self.start:6.1f}s] {message}"
        with self._lock:
            bars = self._bars
        if bars is not None:
            bars.console.print(line, markup=False, highlight=False)  # above the bars, not through them
        else:
            print(line, file=self.stream, flush=True)

    def count(self, description: str, total: int | None, *, unit: str = "records", summary: bool = True):
        """A counter to `advance(n)` and `close()` (or use as a context manager)."""
        return _Counter(self, description, total, unit, summary)

    # -- bars (rich is imported only when a bar is drawn)
    def _open_bar(self, description: str, total: int | None, unit: str):
        if not (self.enabled and self.tty):
            return None
        with self._lock:
            if self._bars is None:
                self._bars = _rich_progress(self.stream)
                self._bars.start()
            self._open += 1
            return self._bars.add_task(description, total=total, unit=unit)

    def _close_bar(self, task_id) -> None:
        with self._lock:
            bars = self._bars
            bars.refresh()  # the final count and rate, drawn once before the bar goes
            bars.remove_task(task_id)
            self._open -= 1
            if self._open == 0:
                self._bars = None
                bars.stop()


class _Counter:
    def __init__(self, owner: Progress, description: str, total: int | None, unit: str, summary: bool):
        self.owner, self.description, self.total, self.unit, self.summary = owner, description, total, unit, summary
        self.done = 0
        self.started = time.monotonic()
        self._closed = False
        self._lock = threading.Lock()  # LLM calls finish on another thread
        self._task = owner._open_bar(description, total, unit)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._closed:
                return
            self.done += n
            if self._task is not None:
                self.owner._bars.update(self._task, completed=self.done)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._task is not None:
            self.owner._close_bar(self._task)
        if self.summary and self.owner.enabled:
            seconds = time.monotonic() - self.started
            rate = f", {self.done / seconds:,.1f} {self.unit}/s" if seconds > 0 and self.done else ""
            self.owner(f"{self.description}: {self.done:,} {self.unit} in {seconds:.1f} s{rate}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rich_progress(stream):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} {task.fields.get('unit', '')}/s" if speed else "", style="progress.data.speed")

    console = Console(file=stream, force_terminal=True)
    # transient: a finished bar leaves its one summary line, not a screen of 100% bars
    return RichProgress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(), RateColumn(),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                        console=console, transient=True, redirect_stdout=False, redirect_stderr=False)

