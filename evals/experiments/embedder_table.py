"""The embedder comparison table: each evals/results/embedders/NAME/results.json against minilm's, paired
by draw (draws vary more than encoders do).

    python -m evals.experiments.embedder_table [NAME ...]     # default: every folder beside minilm

Per dataset and system (lfagent-none silver, lr-seeds): mean ± sd per encoder, then the paired mean
difference to minilm with wins/ties/losses. Writes evals/results/embedders/COMPARISON.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "embedders"
BASE = "minilm"


def load(name: str) -> dict[tuple[str, str, int], dict]:
    runs = json.loads((RESULTS / name / "results.json").read_text())["runs"]
    return {(r["dataset"], r["system"], r["draw"]): r for r in runs if "error" not in r}


def main(names: list[str]) -> None:
    names = names or sorted(p.name for p in RESULTS.iterdir() if (p / "results.json").is_file() and p.name != BASE)
    base = load(BASE)
    lines = ["| dataset | system | field | minilm | " + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names)]
    others = {name: load(name) for name in names}
    for dataset, system in dict.fromkeys((d, s) for d, s, _ in base):
        for field in ("score", "end_model"):
            draws = sorted(d for ds, s, d in base if (ds, s) == (dataset, system))
            ref = np.array([base[(dataset, system, d)][field] for d in draws])
            cells = [f"{ref.mean():.3f} ± {ref.std(ddof=1):.3f}"]
            for name in names:
                pairs = [(others[name][(dataset, system, d)][field], base[(dataset, system, d)][field])
                         for d in draws if (dataset, system, d) in others[name]]
                got, deltas = np.array([p[0] for p in pairs]), np.array([p[0] - p[1] for p in pairs])
                wins, losses = int((deltas > 5e-4).sum()), int((deltas < -5e-4).sum())
                cells.append(f"{got.mean():.3f} ± {got.std(ddof=1):.3f} ({deltas.mean():+.3f}; "
                             f"{wins}/{len(deltas) - wins - losses}/{losses})")
            lines.append(f"| {dataset} | {system} | {field} | " + " | ".join(cells) + " |")
    command = "python -m evals.experiments.embedder_table " + " ".join(sys.argv[1:])
    text = (f"# Encoders compared (lfagent --llm none and lr-seeds, paired by draw)\n\n`{command}`\n\n"
            "Cells: mean ± sd over draws (paired mean difference to minilm; wins/ties/losses). `score` is the "
            "headline (silver on test rows), `end_model` the logistic regression trained on silver; both use "
            "the encoder under test, as does lr-seeds.\n\n" + "\n".join(lines) + "\n")
    (RESULTS / "COMPARISON.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
