"""Paired differences: each lfagent LLM system against lfagent-none on the same draws.

Draws vary far more than systems do (sd over draws is often 5x the gap between systems), so a mean per
system hides what the comparison is about: on the same seeds, does the LLM run label better? Scores equal
to three decimals count as a tie.
"""
from __future__ import annotations

import numpy as np

BASELINE = "lfagent-none"
TIE = 5e-4


def paired_differences(runs: list[dict], baseline: str = BASELINE) -> list[dict]:
    """One row per (dataset, lfagent system other than `baseline`) with draws both ran without error."""
    done = {(r["dataset"], r["system"], r["draw"]): r for r in runs if "error" not in r}
    pairs = dict.fromkeys((d, s) for d, s, _ in done if s.startswith("lfagent-") and s != baseline)  # run order
    rows = []
    for dataset, system in pairs:
        draws = sorted(draw for d, s, draw in done if (d, s) == (dataset, system) and (d, baseline, draw) in done)
        if not draws:
            continue
        row = {"dataset": dataset, "system": system, "baseline": baseline, "draws": draws}
        for field in ("score", "end_model"):
            deltas = [_delta(done[(dataset, system, d)].get(field), done[(dataset, baseline, d)].get(field))
                      for d in draws]
            row[field] = _tally(deltas)
        rows.append(row)
    return rows


def _delta(value, base) -> float | None:
    return None if value is None or base is None else float(value) - float(base)


def _tally(deltas: list[float | None]) -> dict:
    known = [d for d in deltas if d is not None]
    return {"per_draw": deltas,
            "mean": float(np.mean(known)) if known else None,
            "wins": sum(d > TIE for d in known), "ties": sum(abs(d) <= TIE for d in known),
            "losses": sum(d < -TIE for d in known)}
