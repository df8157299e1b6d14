"""The end-model column before (covered rows, hard labels) and after (every row, weighted by confidence).

    python evals/results/end-model-all-rows/compare.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    old, new = (json.loads((HERE / part / "results.json").read_text()) for part in ("before", "."))
    summary = {(s["dataset"], s["system"]): s for s in old["summary"]}
    after = {(s["dataset"], s["system"]): s for s in new["summary"]}
    print("| dataset | system | silver score | end model, covered rows (before) | end model, every row "
          "weighted by confidence (now) | Δ per draw |\n|---|---|---|---|---|---|")
    for key, a in summary.items():
        b = after[key]
        runs = [[r for r in results["runs"] if (r["dataset"], r["system"]) == key] for results in (old, new)]
        deltas = " ".join(f"{y['end_model'] - x['end_model']:+.3f}" for x, y in zip(*runs))
        print(f"| {key[0]} | {key[1]} | {a['score']['mean']:.3f} | {a['end_model']['mean']:.3f} ± "
              f"{a['end_model']['sd']:.3f} | {b['end_model']['mean']:.3f} ± {b['end_model']['sd']:.3f} | {deltas} |")


if __name__ == "__main__":
    main()
