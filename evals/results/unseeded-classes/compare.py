"""lfagent-none draw by draw: this folder (c8d9867, classes the seeds miss) against end-model-all-rows (eb89245).

    python evals/results/unseeded-classes/compare.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("score", "end_model", "ece", "coverage")


def main() -> None:
    before, after = (json.loads(path.read_text()) for path in
                     (HERE.parent / "end-model-all-rows" / "results.json", HERE / "results.json"))
    runs = [{(r["dataset"], r["draw"]): r for r in results["runs"] if r["system"] == "lfagent-none"}
            for results in (before, after)]
    print("| dataset | draw | " + " | ".join(f"{f} before | {f} after" for f in FIELDS) + " |")
    print("|---|---|" + "---|---|" * len(FIELDS))
    for key, old in runs[0].items():
        new = runs[1][key]
        if any(abs(new[f] - old[f]) > 1e-9 for f in FIELDS):
            print(f"| {key[0]} | {key[1]} | " + " | ".join(f"{old[f]:.3f} | {new[f]:.3f}" for f in FIELDS) + " |")
    print(f"\n{len(runs[0])} runs; the runs not listed are identical in these fields.")


if __name__ == "__main__":
    main()
