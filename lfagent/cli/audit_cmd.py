"""`lfagent audit RUN_DIR [--top N] [--out RUN_DIR/review.jsonl]`: likely seed-label errors and silver
records worth a human look, written as a review queue and shown as a short table."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="directory written by `lfagent run --out`")
    parser.add_argument("--top", type=int, default=20, help="rows of each kind to keep (default 20)")
    parser.add_argument("--out", help="review queue to write, JSONL (default RUN_DIR/review.jsonl)")
    parser.add_argument("--show", type=int, default=10, help="rows of each kind to print (default 10)")
    parser.add_argument("--no-votes", action="store_true",
                        help="do not re-apply the LFs (no disagreement signal, no silver texts)")
    parser.add_argument("--no-embeddings", action="store_true", help="skip embedding LFs when re-applying")
    parser.add_argument("--no-sandbox", action="store_true", help="skip code LFs when re-applying")


def main(args: argparse.Namespace) -> int:
    from lfagent.report.audit import audit_run, write_review_queue
    from lfagent.errors import InputError

    if args.top < 1:
        raise InputError("--top must be at least 1")
    result = audit_run(args.run_dir, top=args.top, votes=not args.no_votes, embeddings=not args.no_embeddings,
                       sandbox=not args.no_sandbox)
    out = Path(args.out) if args.out else Path(args.run_dir) / "review.jsonl"
    count = write_review_queue(out, result.rows)
    _print_tables(result, args.show)
    print(f"wrote {out} ({len(result.seed_errors)} seed_error, {len(result.silver_review)} silver_review rows; "
          f"{count} in all)")
    return 0


def _print_tables(result, show: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for title, rows in (("Seed labels the cross-fitted model contradicts", result.seed_errors),
                        ("Silver records worth a look", result.silver_review)):
        if not rows:
            console.print(f"{title}: none")
            continue
        table = Table(title=f"{title} (top {min(show, len(rows))} of {len(rows)})", title_justify="left")
        table.add_column("score", style="bold", no_wrap=True)
        table.add_column("id", max_width=12, no_wrap=True, overflow="ellipsis")
        table.add_column("given", no_wrap=True)
        table.add_column("suggested", style="green", no_wrap=True)
        table.add_column("text", ratio=3, overflow="fold")
        table.add_column("reason", ratio=2, style="dim", overflow="fold")
        for row in rows[:show]:
            table.add_row(f"{row.score:.3f}", str(row.id), _label(row.given_label), _label(row.suggested_label),
                          _short(row.text), row.reason)
        console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def _label(value) -> str:
    if value is None:
        return "-"
    return ",".join(value) or "(none)" if isinstance(value, list) else str(value)


def _short(text: str | None, width: int = 70) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
