"""LF summary rows like Snorkel's LFAnalysis, and a fixed-width text rendering for lfs.txt files."""
from __future__ import annotations

from collections.abc import Sequence

from lfagent.scoring.stats import LFStats


def lf_summary_table(stats: Sequence[LFStats], class_names: Sequence[str] | None = None) -> list[dict]:
    """One plain dict per LF: j, name, polarity, coverage, overlaps, conflicts, correct, incorrect,
    emp_acc, ci_low, ci_high, chance. Polarity lists class names when `class_names` is given."""
    def class_name(c: int) -> str:
        return str(class_names[c]) if class_names is not None and 0 <= c < len(class_names) else str(c)

    return [{"j": j, "name": s.name, "polarity": [class_name(c) for c in s.polarity],
             "coverage": s.coverage, "overlaps": s.overlap, "conflicts": s.conflict,
             "correct": s.seed_correct, "incorrect": s.seed_incorrect, "emp_acc": s.seed_accuracy,
             "ci_low": s.ci_low, "ci_high": s.ci_high, "chance": s.chance}
            for j, s in enumerate(stats)]


def format_cell(value, digits: int = 3) -> str:
    """One table cell, the same in every table lfagent prints: None as a dash, floats rounded, booleans
    as yes/no, lists joined by commas."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ",".join(format_cell(v, digits) for v in value) or "-"
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Fixed-width text table: a header, a rule, one line per row; numbers right-aligned.

    Columns default to the keys of the first row; floats print with 3 decimals, None as '-'.
    """
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    cells = [[format_cell(row.get(col)) for col in columns] for row in rows]
    numeric = [all(isinstance(row.get(col), (int, float)) or row.get(col) is None for row in rows)
               for col in columns]
    widths = [max(len(col), *(len(line[i]) for line in cells)) for i, col in enumerate(columns)]

    def render(values) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    lines = [render(columns), "  ".join("-" * w for w in widths)] + [render(line) for line in cells]
    return "\n".join(lines) + "\n"
