"""Rich renderables for the REPL: plain data in, tables out; nothing here prints or touches a Session."""
from __future__ import annotations

from typing import Any, Iterable

from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from lfagent.scoring.table import format_cell

STATUS_STYLE = {"kept": "green", "dropped": "red", "candidate": "yellow"}
METRIC_LABELS = [
    ("seed_accuracy", "seed accuracy (cross-fitted)"),
    ("seed_ece", "seed ECE"),
    ("unlabeled_coverage", "unlabeled coverage"),
    ("n_kept", "LFs kept"),
    ("n_candidates", "candidates"),
    ("label_model", "label model"),
]




def accuracy_cell(accuracy: float | None, ci: list | tuple | None) -> str:
    if accuracy is None:
        return "-"
    return f"{accuracy:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{accuracy:.3f}"


def lfs_table(rows: list[dict], *, title: str | None = None) -> Table:
    """name, kind, class, coverage, seed accuracy with its interval, status and pin: one line per LF."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for column, justify in (("name", "left"), ("kind", "left"), ("class", "left"), ("coverage", "right"),
                            ("seed votes", "right"), ("seed accuracy [95% CI]", "right"), ("status", "left"),
                            ("pin", "left"), ("reason", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for row in rows:
        status = row.get("status") or "-"
        table.add_row(Text(row["name"]), row.get("kind", "-"), Text(str(row.get("class", "-"))),
                      format_cell(row.get("coverage")), format_cell(row.get("seed_votes")),
                      accuracy_cell(row.get("seed_accuracy"), row.get("ci")),
                      Text(status, style=STATUS_STYLE.get(status, "")), row.get("pinned") or "",
                      Text(row.get("reason") or ""))
    return table


def metrics_table(metrics: dict | None, *, previous: dict | None = None, title: str = "fit") -> Table:
    """Cross-fitted seed figures; with `previous`, the change since the last fit."""
    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if previous is not None:
        table.add_column("before", justify="right")
    for key, label in METRIC_LABELS:
        if metrics is None or key not in metrics:
            continue
        value = format_cell(metrics[key])
        if key == "seed_accuracy" and metrics.get("seed_accuracy_low") is not None:
            value += f" [{metrics['seed_accuracy_low']:.3f}, {metrics['seed_accuracy_high']:.3f}]"
        cells = [label, value]
        if previous is not None:
            cells.append(format_cell(previous.get(key)))
        table.add_row(*cells)
    return table


def status_view(*, task: str, run_dir: str, llm: str, metrics: dict | None, counts: dict[str, int],
                pins: dict[str, int], usage: dict) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("task", Text(task))
    head.add_row("run", Text(run_dir))
    head.add_row("llm", Text(llm))
    total = sum(counts.values())
    head.add_row("LFs", f"{total} ({', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'none yet'})")
    if pins:
        head.add_row("pinned", ", ".join(f"{n} {p}" for p, n in sorted(pins.items())))
    if usage.get("calls"):
        tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        head.add_row("LLM use", f"{usage['calls']} calls, {tokens} tokens, ${usage.get('cost', 0.0):.4f}")
    parts: list = [head]
    parts.append(metrics_table(metrics, title="last fit") if metrics else Text("not fitted yet: `fit`"))
    return Group(*parts)


def lf_source_view(lf) -> Panel:
    """The LF's definition: Python for code LFs, its fields for declarative ones."""
    if lf.kind == "code":
        body = Syntax(lf.source, "python", line_numbers=True, word_wrap=True)
    else:
        body = Text(lf.summary())
    return Panel(body, title=f"{lf.name} ({lf.kind}, {lf.provenance.source})", title_align="left")


def lf_detail(lf, row: dict | None, hits: list[dict], mistakes: list[dict]) -> Group:
    parts: list = [lf_source_view(lf)]
    if lf.description and lf.kind != "code":
        parts.append(Text(lf.description))
    if row is not None:
        parts.append(lfs_table([row]))
    parts.append(examples_table("hits on the seeds (vote = true label)", hits))
    parts.append(examples_table("mistakes on the seeds (vote != true label)", mistakes))
    return Group(*parts)


def examples_table(title: str, examples: list[dict]) -> Table | Text:
    if not examples:
        return Text(f"{title}: none")
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("seed text", overflow="fold", ratio=4)
    table.add_column("true", ratio=1)
    table.add_column("vote", ratio=1)
    for example in examples:
        table.add_row(Text(example["text"]), Text(example["true"]), Text(example["vote"]))
    return table


def label_view(text: str, result: dict) -> Group:
    """Each LF's vote on one text, then the class probabilities."""
    votes = Table(title="votes", title_justify="left", header_style="bold")
    votes.add_column("LF")
    votes.add_column("vote")
    for name, vote in sorted(result["votes"].items(), key=lambda item: (item[1] is None, item[0])):
        votes.add_row(Text(name), Text(vote or "abstain", style="" if vote else "dim"))
    probs = Table(title="probabilities", title_justify="left", header_style="bold")
    probs.add_column("class")
    probs.add_column("p", justify="right")
    best = max(result["probs"], key=result["probs"].get) if result["probs"] else None
    for name, p in result["probs"].items():
        probs.add_row(Text(name, style="bold" if name == best else ""), f"{p:.3f}")
    voted = sum(v is not None for v in result["votes"].values())
    note = Text(f"{voted} of {len(result['votes'])} kept LFs voted"
                + ("" if result.get("covered", True) else "; not covered by any LF (fallback or prior)"))
    return Group(Text(f"text: {text}"), votes, probs, note)


def eval_view(report: dict) -> Group:
    parts: list = []
    seeds = report.get("cross_fitted_seeds")
    if seeds:
        parts.append(metrics_table(seeds, title="cross-fitted on the seeds"))
    for key, value in report.items():
        if key != "cross_fitted_seeds":
            parts.append(data_view(value, title=key))
    return Group(*parts)


def proposal_view(report) -> Group:
    parts: list = [Text(f"{len(report.added)} added, {len(report.rejected)} rejected, "
                        f"{len(report.failures)} failed calls")]
    if report.added:
        table = Table(title="added (candidates)", title_justify="left", header_style="bold")
        table.add_column("name")
        table.add_column("kind")
        table.add_column("what it does", overflow="fold")
        for lf in report.added:
            table.add_row(Text(lf.name), lf.kind, Text(lf.summary()))
        parts.append(table)
    if report.rejected:
        table = Table(title="rejected", title_justify="left", header_style="bold")
        table.add_column("what", overflow="fold")
        table.add_column("reason", overflow="fold")
        for what, reason in report.rejected:
            table.add_row(Text(str(what)[:80]), Text(str(reason)))
        parts.append(table)
    for failure in report.failures:
        parts.append(Text(f"LLM call failed: {failure}", style="red"))
    return Group(*parts)


def audit_view(result) -> Group:
    """Seed labels a cross-fitted model contradicts, then silver records worth a look."""
    parts: list = []
    for title, rows in (("seed labels that look wrong", result.seed_errors),
                        ("silver records worth a look", result.silver_review)):
        if not rows:
            parts.append(Text(f"{title}: none"))
            continue
        table = Table(title=title, title_justify="left", header_style="bold")
        for column, justify in (("id", "left"), ("given", "left"), ("suggested", "left"), ("score", "right"),
                                ("reason", "left"), ("text", "left")):
            table.add_column(column, justify=justify, overflow="fold")
        for row in rows:
            table.add_row(Text(str(row.id)), Text(_labels(row.given_label)), Text(_labels(row.suggested_label)),
                          f"{row.score:.2f}", Text(row.reason), Text(_short(row.text or "", 160)))
        parts.append(table)
    parts += [Text(f"note: {note}", style="dim") for note in result.notes]
    return Group(*parts)


def _labels(value) -> str:
    if value is None:
        return "-"
    return ", ".join(value) if isinstance(value, list) else str(value)


def data_view(value: Any, *, title: str | None = None):
    """Generic view of JSON-like data: a list of dicts as a table, a dict as key/value rows."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(str(column), overflow="fold")
        for item in value:
            table.add_row(*(Text(_short(item.get(c))) for c in columns))
        return table
    if isinstance(value, dict):
        table = Table(title=title, title_justify="left", header_style="bold", show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, item in value.items():
            inner = data_view(item) if isinstance(item, (dict, list)) and item else Text(_short(item))
            table.add_row(str(key), inner)
        return table
    return Text((f"{title}: " if title else "") + _short(value))


def _short(value: Any, limit: int = 300) -> str:
    text = format_cell(value, 4) if isinstance(value, float) or value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def help_table(commands: Iterable) -> Table:
    table = Table(title="commands", title_justify="left", header_style="bold", show_header=False)
    table.add_column("usage", style="bold")
    table.add_column("what it does", overflow="fold")
    for spec in commands:
        table.add_row(spec.usage, spec.summary)
    return table
