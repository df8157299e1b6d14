"""REPL commands: parse a line, call the Session, return renderables. No prompt, no printing.

    shell = Shell(session)
    outcome = shell.execute('propose 2 --class SPAM')
    outcome.output   # rich renderables / strings for the face to print
    outcome.quit     # True after `quit`

Errors surface as exceptions (LFAgentError for ones the user can act on); the face turns each into
one line and keeps the session going.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import re
import shlex
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np

from lfagent.errors import InputError, LFAgentError, LFRejected
from lfagent.repl import render
from lfagent.repl.edit import editable_text, parse_edited, run_editor

KINDS = ("code", "keywords", "recall", "concepts")
LF_STATUSES = ("kept", "dropped", "candidate", "pinned")


class UsageError(LFAgentError):
    """A command line the REPL cannot parse."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    completes: str = ""  # what its arguments are: "lf", "path", "status", or ""


COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in (
    CommandSpec("help", "help [COMMAND]", "list commands, or explain one"),
    CommandSpec("status", "status", "run, LLM use, LF counts and the last fit's cross-fitted figures"),
    CommandSpec("lfs", "lfs [kept|dropped|candidate|pinned]", "the LFs: kind, class, coverage, seed accuracy "
                "with its 95% interval, status", "status"),
    CommandSpec("show", "show LF", "an LF's source or definition, stats, and its hits and mistakes on the seeds",
                "lf"),
    CommandSpec("propose", "propose [N] [--class C] [--kind code|keywords|recall|concepts]",
                "ask the LLM for N new LFs (candidates), then fit to score them"),
    CommandSpec("refine", "refine LF", "show the LLM an LF's mistakes and ask for a better version", "lf"),
    CommandSpec("keep", "keep LF", "pin an LF as kept whatever scoring says (applies at the next fit)", "lf"),
    CommandSpec("drop", "drop LF", "pin an LF as dropped (applies at the next fit)", "lf"),
    CommandSpec("unpin", "unpin LF", "let scoring decide about an LF again", "lf"),
    CommandSpec("edit", "edit LF", "edit an LF in $EDITOR; it is checked, re-scored and refitted", "lf"),
    CommandSpec("fit", "fit", "mine, score, select and fit the label model (cross-fitted figures)"),
    CommandSpec("eval", "eval", "cross-fitted seed figures, and test-set figures when the task has a test file"),
    CommandSpec("label", 'label "some text"', "each kept LF's vote on a text and the class probabilities"),
    CommandSpec("audit", "audit", "likely seed-label errors and silver records worth a human look"),
    CommandSpec("export", "export PATH", "write the kept LFs as an editable Python module", "path"),
    CommandSpec("save", "save", "write silver.jsonl, lfs.json, metrics.json and model.json to the run dir"),
    CommandSpec("quit", "quit", "leave (everything is already saved in the run store; Ctrl-D works too)"),
)}
ALIASES = {"exit": "quit", "q": "quit", "?": "help", "ls": "lfs", "evaluate": "eval"}


@dataclass
class ParsedCommand:
    name: str
    args: list[str]
    rest: str  # the raw text after the command name


@dataclass
class Outcome:
    output: list[Any] = field(default_factory=list)
    quit: bool = False


def parse_line(line: str) -> ParsedCommand | None:
    """None for a blank line or a # comment; UsageError for an unknown command or bad quoting."""
    match = re.match(r"\s*(\S+)\s*(.*?)\s*$", line, re.DOTALL)
    if not match or match.group(1).startswith("#"):
        return None
    head, rest = match.groups()
    name = ALIASES.get(head.lower(), head.lower())
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS) + list(ALIASES), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else "; `help` lists commands"
        raise UsageError(f"unknown command {head!r}{hint}")
    if name == "label":  # free text: quotes optional
        return ParsedCommand(name, [_unquote(rest)] if rest else [], rest)
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    return ParsedCommand(name, args, rest)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        try:
            return shlex.split(text)[0]
        except (ValueError, IndexError):
            return text[1:-1]
    return text


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}; usage: {COMMANDS[self.prog].usage}")


def _propose_parser() -> argparse.ArgumentParser:
    parser = _ArgParser(prog="propose", add_help=False)
    parser.add_argument("n", nargs="?", type=int, default=1)
    parser.add_argument("--class", dest="class_name")
    parser.add_argument("--kind", choices=KINDS, default="code")
    return parser


class Shell:
    """The REPL's commands over a Session. `busy(message)` wraps slow steps (a spinner in the face);
    `editor(path)` edits a file in place (default: $EDITOR)."""

    def __init__(self, session, *, busy: Callable[[str], ContextManager] | None = None,
                 editor: Callable[[Path], None] | None = None):
        self.session = session
        self.busy = busy or (lambda message: contextlib.nullcontext())
        self.editor = editor or run_editor

    # -- entry points
    def execute(self, line: str) -> Outcome:
        parsed = parse_line(line)
        if parsed is None:
            return Outcome()
        handler = getattr(self, f"do_{parsed.name}")
        result = handler(parsed)
        if isinstance(result, Outcome):
            return result
        return Outcome(output=result if isinstance(result, list) else [result])

    def lf_names(self) -> list[str]:
        return [lf.name for lf, *_ in self.session.store.lfs()]

    def class_names(self) -> list[str]:
        return list(self.session.task.class_names)

    def fit(self) -> dict | None:
        """Fit with a busy indicator; returns the previous metrics (None before the first fit)."""
        previous = self._metrics()
        with self.busy("fitting: mining, scoring and the label model"):
            self.session.fit()
        return previous

    # -- helpers
    def _metrics(self) -> dict | None:
        result = self.session.result
        return None if result is None else result.metrics.model_dump()

    def _one_lf(self, parsed: ParsedCommand) -> str:
        if len(parsed.args) != 1:
            raise UsageError(f"usage: {COMMANDS[parsed.name].usage}")
        name = parsed.args[0]
        if name not in self.lf_names():
            close = difflib.get_close_matches(name, self.lf_names(), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; `lfs` lists them"
            raise InputError(f"no LF named {name!r}{hint}")
        return name

    def _no_args(self, parsed: ParsedCommand) -> None:
        if parsed.args:
            raise UsageError(f"{parsed.name} takes no arguments; usage: {COMMANDS[parsed.name].usage}")

    def _row(self, name: str) -> dict | None:
        return next((row for row in self.session.lfs if row["name"] == name), None)

    # -- commands
    def do_help(self, parsed: ParsedCommand):
        if parsed.args:
            name = ALIASES.get(parsed.args[0], parsed.args[0])
            if name not in COMMANDS:
                raise UsageError(f"no command {parsed.args[0]!r}; `help` lists commands")
            spec = COMMANDS[name]
            return f"{spec.usage}\n  {spec.summary}"
        return render.help_table(COMMANDS.values())

    def do_status(self, parsed: ParsedCommand):
        self._no_args(parsed)
        entries = self.session.store.lfs()
        counts = Counter(status for _, status, _, _ in entries)
        pins = Counter(pinned for _, _, pinned, _ in entries if pinned)
        return render.status_view(task=self.session.task.name, run_dir=str(self.session.run_dir),
                                  llm=str(self.session.llm_spec), metrics=self._metrics(), counts=dict(counts),
                                  pins=dict(pins), usage=self.session.store.llm_usage())

    def do_lfs(self, parsed: ParsedCommand):
        if len(parsed.args) > 1 or (parsed.args and parsed.args[0] not in LF_STATUSES):
            raise UsageError(f"usage: {COMMANDS['lfs'].usage}")
        rows = self.session.lfs
        if not rows:
            return "no LFs yet: `fit` mines candidates from the seeds, `propose` asks the LLM"
        if parsed.args:
            wanted = parsed.args[0]
            rows = [r for r in rows if (r.get("pinned") if wanted == "pinned" else r["status"] == wanted)]
        order = {"kept": 0, "candidate": 1, "dropped": 2}
        rows = sorted(rows, key=lambda r: (order.get(r["status"], 3), -(r.get("coverage") or 0.0), r["name"]))
        kept = sum(r["status"] == "kept" for r in rows)
        return render.lfs_table(rows, title=f"{len(rows)} LFs, {kept} kept")

    def do_show(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        lf = self.session.get_lf(name)
        if self.session.result is None:
            return [render.lf_source_view(lf), "not fitted yet: `fit` to see its stats, hits and mistakes"]
        hits, mistakes = seed_examples(self.session, lf)
        return render.lf_detail(lf, self._row(name), hits, mistakes)

    def do_propose(self, parsed: ParsedCommand):
        options = _propose_parser().parse_args(parsed.args)
        if options.n < 1 or options.n > 50:
            raise UsageError("propose: N must be between 1 and 50")
        if options.class_name is not None and options.class_name not in self.class_names():
            raise UsageError(f"propose: unknown class {options.class_name!r}; classes: {', '.join(self.class_names())}")
        with self.busy(f"asking the LLM for {options.n} {options.kind} LF(s)"):
            report = self.session.propose(options.n, kind=options.kind, class_name=options.class_name)
        return self._after_proposal(report)

    def do_refine(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        with self.busy(f"asking the LLM to refine {name}"):
            report = self.session.refine(name)
        return self._after_proposal(report)

    def _after_proposal(self, report) -> list:
        output: list = [render.proposal_view(report)]
        if report.added:
            previous = self.fit()
            added = {lf.name for lf in report.added}
            rows = [r for r in self.session.lfs if r["name"] in added]
            output += [render.lfs_table(rows, title="new LFs after fitting"),
                       render.metrics_table(self._metrics(), previous=previous)]
        return output

    def do_keep(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        self.session.keep(name)
        return f"pinned {name}: keep (saved; applies at the next `fit`)"

    def do_drop(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        self.session.drop(name)
        return f"pinned {name}: drop (saved; applies at the next `fit`)"

    def do_unpin(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        self.session.store.pin(name, None)
        return f"unpinned {name} (saved; scoring decides at the next `fit`)"

    def do_edit(self, parsed: ParsedCommand):
        name = self._one_lf(parsed)
        original = self.session.get_lf(name)
        text, suffix = editable_text(original)
        with tempfile.TemporaryDirectory(prefix="lfagent-edit-") as folder:
            path = Path(folder) / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            self.editor(path)
            new_text = path.read_text(encoding="utf-8")
        if new_text == text:
            return f"{name} unchanged"
        edited = parse_edited(original, new_text)
        return self._apply_edit(original, edited)

    def _apply_edit(self, original, edited) -> list:
        """Try the edit on the seeds first; only an LF that runs replaces the old one. A fit re-scores it."""
        error = trial_error(self.session, edited)
        if error:
            raise LFRejected(edited.name, f"{error}; the LF is unchanged")
        self.session.update_lf(edited)  # lints code; raises LFRejected before anything is stored
        previous = self.fit()
        output: list = [f"{edited.name} updated and re-scored"]
        row = self._row(edited.name)
        if row is not None:
            output.append(render.lfs_table([row]))
        output.append(render.metrics_table(self._metrics(), previous=previous))
        return output

    def do_fit(self, parsed: ParsedCommand):
        self._no_args(parsed)
        previous = self.fit()
        return render.metrics_table(self._metrics(), previous=previous)

    def do_eval(self, parsed: ParsedCommand):
        self._no_args(parsed)
        with self.busy("evaluating"):
            report = self.session.evaluate()
        return render.eval_view(report)

    def do_label(self, parsed: ParsedCommand):
        if not parsed.args or not parsed.args[0].strip():
            raise UsageError(f"usage: {COMMANDS['label'].usage}")
        text = parsed.args[0]
        with self.busy("labeling"):
            result = self.session.label_text(text)
        return render.label_view(text, result)

    def do_audit(self, parsed: ParsedCommand):
        self._no_args(parsed)
        with self.busy("writing the run outputs and auditing seed labels and silver records"):
            result = audit_session(self.session)
        return render.audit_view(result)

    def do_export(self, parsed: ParsedCommand):
        if len(parsed.args) != 1:
            raise UsageError(f"usage: {COMMANDS['export'].usage}")
        with self.busy("exporting"):
            path = self.session.export(Path(parsed.args[0]).expanduser())
        return f"wrote {len(self.session.result.final.lfs)} kept LFs to {path}"

    def do_save(self, parsed: ParsedCommand):
        self._no_args(parsed)
        with self.busy("writing silver labels and run outputs"):
            path = self.session.write_outputs()
        return f"wrote {path} and the run outputs in {Path(path).parent}"

    def do_quit(self, parsed: ParsedCommand):
        return Outcome(quit=True)


def seed_examples(session, lf, *, limit: int = 5) -> tuple[list[dict], list[dict]]:
    """Up to `limit` seeds the LF votes right on (hits) and wrong on (mistakes)."""
    L_seed, _ = session.votes.matrices([lf])
    votes = np.asarray(L_seed)[:, 0]
    y = np.asarray(session.seeds.y)
    names = session.task.class_names
    hits, mistakes = [], []
    for i in np.flatnonzero(votes >= 0):
        vote = int(votes[i])
        if y.ndim == 2:
            correct, true = bool(y[i, vote]), ",".join(n for n, on in zip(names, y[i]) if on) or "(none)"
        else:
            correct, true = int(y[i]) == vote, names[int(y[i])]
        bucket = hits if correct else mistakes
        if len(bucket) < limit:
            bucket.append({"text": session.seeds.texts[i], "true": true, "vote": names[vote]})
    return hits, mistakes


def trial_error(session, lf) -> str | None:
    """Run an edited LF on the seeds (code in the sandbox); the error message, or None when it runs."""
    from lfagent.sandbox.apply import apply_lfs, is_trusted

    if lf.kind == "code":
        from lfagent.sandbox.lint import check_code_lf

        check_code_lf(lf.name, lf.source)
    if lf.kind != "code" and lf.label not in session.task.class_names:
        return f"unknown class {lf.label!r}; classes: {', '.join(session.task.class_names)}"
    corpus = getattr(session, "corpus", None)
    embeddings = None if corpus is None else corpus.seed_emb
    if lf.kind == "embedding" and embeddings is None:
        return "embedding LFs need embeddings (this session runs without them)"
    outcome = apply_lfs([lf], session.seeds.texts, session.task.class_names, rows=session.seeds.rows,
                        embeddings=embeddings, pool=None if is_trusted(lf) else session.pool)
    return outcome.errors.get(lf.name)


def audit_session(session, *, top: int = 10):
    """Audit the current fit: the run outputs are written first, since the audit reads the run directory."""
    from lfagent.report.audit import audit_run

    session.write_outputs()
    return audit_run(session.run_dir, top=top)
