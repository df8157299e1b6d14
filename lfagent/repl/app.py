"""The REPL loop: prompt_toolkit on a terminal (history, completion), plain line reading when piped.

Each command runs under its own guard: an error prints one line, Ctrl-C returns to the prompt with
the run store as it was after the last completed write, Ctrl-D or `quit` leaves.
"""
from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path
from typing import Iterable, TextIO

from prompt_toolkit.completion import Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from rich.console import Console
from rich.text import Text

from lfagent.errors import LFAgentError
from lfagent.repl.commands import ALIASES, COMMANDS, KINDS, LF_STATUSES, Shell

HISTORY_FILE = "repl_history"
PROMPT = "lfagent> "


class ProgressSink:
    """The Session's progress callback: updates the spinner while a command is busy, else prints a line."""

    def __init__(self, console: Console, *, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.status = None

    def __call__(self, message: str) -> None:
        if self.status is not None:
            self.status.update(Text(message))
        elif not self.quiet:
            self.console.print(Text(message, style="dim"))

    @contextlib.contextmanager
    def busy(self, message: str):
        if self.status is not None or not self.console.is_terminal:
            yield  # nested, or piped: no spinner (progress lines go to stderr if it is a terminal)
            return
        with self.console.status(Text(message)) as status:
            self.status = status
            try:
                yield
            finally:
                self.status = None


class Repl:
    def __init__(self, shell: Shell, console: Console, *, errors: Console | None = None, debug: bool = False):
        self.shell = shell
        self.console = console
        self.errors = errors or console
        self.debug = debug
        self.failures = 0

    def run_line(self, line: str) -> bool:
        """Run one command line; False when the session should end. Never raises (bar SystemExit)."""
        try:
            outcome = self.shell.execute(line)
        except KeyboardInterrupt:
            self.errors.print(Text("interrupted; back at the prompt (completed changes are saved)", style="yellow"))
            self.failures += 1
            return True
        except LFAgentError as exc:
            self._error(str(exc))
            return True
        except Exception as exc:  # a failing LF or a bug must not end the session
            if self.debug:
                self.errors.print(Text(traceback.format_exc(), style="dim"))
            self._error(f"{type(exc).__name__}: {exc}")
            return True
        for item in outcome.output:
            self.console.print(Text(item) if isinstance(item, str) else item)
        return not outcome.quit

    def startup_fit(self) -> None:
        """Fit once on start, so `lfs` and `status` show the stored run (or the freshly mined one)."""
        restored = bool(self.shell.lf_names())
        where = self.shell.session.run_dir
        self.errors.print(Text(f"{'restoring the run in' if restored else 'new run in'} {where}: fitting", style="dim"))
        try:
            self.shell.fit()
        except KeyboardInterrupt:
            self.errors.print(Text("fit interrupted; `fit` to try again", style="yellow"))
            return
        except Exception as exc:  # the prompt is still useful (help, lfs, edit) without a fit
            self._error(f"fit failed: {exc}")
            return
        m = self.shell.session.result.metrics
        self.errors.print(Text(f"{m.n_kept} LFs kept of {m.n_candidates}; cross-fitted seed accuracy "
                               f"{m.seed_accuracy:.3f} [{m.seed_accuracy_low:.3f}, {m.seed_accuracy_high:.3f}]; "
                               "type `help` for commands", style="dim"))

    def _error(self, message: str) -> None:
        self.failures += 1
        first = message.strip().splitlines()[0] if message.strip() else "failed"
        self.errors.print(Text(f"error: {first}", style="red"))

    def run_lines(self, lines: Iterable[str]) -> int:
        """Piped mode: each line a command; exit status 1 when any command failed."""
        for line in lines:
            if not self.run_line(line.rstrip("\n")):
                break
        return 1 if self.failures else 0

    def run_interactive(self, history_path: Path) -> int:
        import signal

        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        # Ctrl-C must interrupt a command even when lfagent was started with SIGINT ignored (a background
        # job of a non-interactive shell inherits SIG_IGN, and Python then installs no handler).
        signal.signal(signal.SIGINT, signal.default_int_handler)

        prompt = PromptSession(history=FileHistory(str(history_path)), completer=ReplCompleter(self.shell),
                               complete_while_typing=False)
        self.console.print(Text("`help` lists commands; `quit` or Ctrl-D leaves", style="dim"))
        while True:
            try:
                line = prompt.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return 0
            if not self.run_line(line):
                return 0


class ReplCompleter(Completer):
    """Command names first; then LF names, class names, kinds, statuses or paths by position."""

    def __init__(self, shell: Shell):
        self.shell = shell
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        words = text.split()
        current = "" if text.endswith((" ", "\t")) or not words else words[-1]
        done = words if current == "" else words[:-1]
        if not done:
            yield from _starting(current, COMMANDS)
            return
        spec = COMMANDS.get(ALIASES.get(done[0].lower(), done[0].lower()))
        if spec is None:
            return
        if done[-1] == "--class":
            yield from _starting(current, self.shell.class_names())
        elif done[-1] == "--kind":
            yield from _starting(current, KINDS)
        elif spec.name == "propose":
            yield from _starting(current, ["--class", "--kind"])
        elif spec.name == "help" and len(done) == 1:
            yield from _starting(current, COMMANDS)
        elif spec.completes == "lf" and len(done) == 1:
            yield from _starting(current, self.shell.lf_names())
        elif spec.completes == "status" and len(done) == 1:
            yield from _starting(current, LF_STATUSES)
        elif spec.completes == "path":
            yield from self.paths.get_completions(Document(current), complete_event)


def _starting(prefix: str, options: Iterable[str]):
    for option in options:
        if option.startswith(prefix):
            yield Completion(option, start_position=-len(prefix))


def start(session, *, stdin: TextIO | None = None, console: Console | None = None,
          errors: Console | None = None, sink: ProgressSink | None = None, interactive: bool | None = None,
          fit_first: bool = True, debug: bool = False) -> int:
    """Run the REPL over `session` until quit/EOF; returns the exit status."""
    stdin = stdin or sys.stdin
    console = console or Console()
    errors = errors or Console(stderr=True)
    sink = sink or ProgressSink(errors)
    interactive = stdin.isatty() if interactive is None else interactive
    shell = Shell(session, busy=sink.busy)
    repl = Repl(shell, console, errors=errors, debug=debug)
    if fit_first:
        repl.startup_fit()
    if interactive:
        return repl.run_interactive(Path(session.run_dir) / HISTORY_FILE)
    return repl.run_lines(stdin)
