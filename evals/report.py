"""Results as Markdown (RESULTS.md), JSON (results.json) and a bar plot (results.png)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from evals.paired import paired_differences
from lfagent.rundir.files import jsonable


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": _cpu_model()}
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    info["git_commit"] = _git_commit()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=5)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5).stdout.splitlines()
        # Result files being rewritten (by this very run, or a rerun into the same folder) are not code.
        dirty = [line for line in status if not line[3:].startswith(("evals/results/", "benchmarks/results/"))]
        return (done.stdout.strip() + ("+uncommitted changes" if dirty else "")) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cell(stat: dict | None, digits: int = 3, sd: bool = True) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    mean = stat["mean"]
    if digits == 0:
        text = f"{mean:,.0f}"
        return text + (f" ± {stat['sd']:,.0f}" if sd and stat.get("sd") else "")
    text = f"{mean:.{digits}f}"
    return text + (f" ± {stat['sd']:.{digits}f}" if sd and stat.get("sd") is not None else "")


def summary_table(results: dict) -> str:
    """Systems x datasets, headline score (mean ± sd over draws)."""
    datasets = list(results["datasets"])
    systems = list(dict.fromkeys(s["system"] for s in results["summary"]))
    by_key = {(s["dataset"], s["system"]): s for s in results["summary"]}
    header = "| system | " + " | ".join(f"{d} ({results['datasets'][d]['score']})" for d in datasets) + " |"
    lines = [header, "|---|" + "---|" * len(datasets)]
    for system in systems:
        cells = [_cell(by_key.get((d, system), {}).get("score")) for d in datasets]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dataset_table(results: dict, dataset: str) -> str:
    meta = results["datasets"][dataset]
    multi = meta["multi_label"]
    columns = ["system", meta["score"], *(["macro-F1"] if multi else []), "end model", "coverage", "ECE",
               "LLM calls", "LLM tokens", "wall s", "draws", "note"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for s in results["summary"]:
        if s["dataset"] != dataset:
            continue
        cells = [s["system"], _cell(s["score"]), *([_cell(s["macro_f1"])] if multi else []), _cell(s["end_model"]),
                 _cell(s["coverage"], 2, sd=False), _cell(s["ece"]), _cell(s["llm_calls"], 0),
                 _cell(s["llm_tokens"], 0), _cell(s["wall_s"], 1, sd=False), str(s["draws"]), s.get("note", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(results: dict) -> str:
    """Each lfagent LLM system minus lfagent-none on the same draws ("" when there is no such pair)."""
    rows = paired_differences(results["runs"])
    if not rows:
        return ""
    lines = ["| dataset | system | draws | Δ score, mean | Δ score per draw | wins / ties / losses "
             "| Δ end model, mean | Δ end model per draw | wins / ties / losses |", "|---" * 9 + "|"]
    for row in rows:
        cells = [row["dataset"], row["system"], ", ".join(map(str, row["draws"]))]
        for field in ("score", "end_model"):
            tally = row[field]
            cells += [_signed(tally["mean"]), " ".join(_signed(d) for d in tally["per_draw"]),
                      f"{tally['wins']} / {tally['ties']} / {tally['losses']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def console_tables(results: dict) -> str:
    """The tables `python -m evals` and `python -m evals.merge` print: headline, paired, per dataset."""
    parts = [summary_table(results)]
    if paired := paired_table(results):
        parts.append(paired)
    parts += [f"{dataset}\n{dataset_table(results, dataset)}" for dataset in results["datasets"]]
    return "\n\n".join(parts)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _draw_seeds(config: dict) -> str:
    seeds = config.get("draw_seeds") or list(range(config["first_draw"], config["first_draw"] + config["draws"]))
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"{seeds[0]}..{seeds[-1]}" if contiguous else ", ".join(map(str, seeds))


def _provenance(results: dict) -> list[str]:
    machine = results.get("machine", {})
    lines = [f"Command: `{results.get('command', '')}`  "]
    for source in results.get("merged_from", []):
        lines.append(f"- `{source['dir']}`: `{source.get('command', '')}` (git {source.get('git_commit') or 'unknown'}, "
                     f"{source.get('started', '')} to {source.get('finished', '')})  ")
    if not results.get("merged_from"):
        lines.append(f"Date: {results.get('started', '')} (finished {results.get('finished', '')})  ")
    lines += [f"Machine: {machine.get('processor', '?')}, {machine.get('cpus', '?')} CPUs, "
              f"{machine.get('memory_gib', '?')} GiB, Python {machine.get('python', '?')}, "
              f"{machine.get('platform', '?')}  ",
              f"Code: git {machine.get('git_commit') or 'unknown'}"]
    return lines


def markdown(results: dict) -> str:
    config = results["config"]
    parts = [
        "# lfagent benchmark (AutoWS-Bench-101 style)", "", *_provenance(results), "",
        f"Protocol: {config['n_seeds']} random seed labels per draw, {config['draws']} draw(s) "
        f"(seeds {_draw_seeds(config)}); unlabeled = the test "
        f"split plus up to {config['extra_unlabeled']} other train rows. Silver labels are scored on the test "
        "rows (uncovered rows count, with whatever probabilities the system gives them); multi-label classes "
        "are lfagent's own `labels` (per-class thresholds chosen on cross-fitted seeds), other systems' are "
        "those at probability >= 0.5. The end model (logistic regression on MiniLM embeddings, C=10, "
        "balanced class weights; lr-seeds is the same model on the seeds) is trained on every extra train "
        "row, covered or not, with its silver label weighted by the system's confidence in it (multi-label: "
        "per class, the decision weighted by p or 1 - p) and scored on test. wrench-* systems use the WRENCH human LFs (fit on "
        "all train rows, no seed labels). Cells are mean ± sd over draws.", "",
        "## Headline score", "", summary_table(results), "",
    ]
    if paired := paired_table(results):
        parts += ["## Against lfagent-none, draw by draw", "",
                  "Each LLM run minus the `--llm none` run on the same seeds (ties: equal to three decimals).", "",
                  paired, ""]
    for dataset, meta in results["datasets"].items():
        lfs = f", {meta['n_lfs']} WRENCH LFs" if meta.get("n_lfs") else ""
        parts += [f"## {dataset}", "",
                  f"{meta['n_train']} train / {meta['n_test']} test rows, classes {', '.join(meta['classes'])}"
                  f"{' (multi-label)' if meta['multi_label'] else ''}{lfs}.", "",
                  dataset_table(results, dataset), ""]
    parts += ["![scores](results.png)", ""]
    return "\n".join(parts)


def write_results(results: dict, out_dir: str | Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "RESULTS.md", "json": out_dir / "results.json", "plot": out_dir / "results.png"}
    paths["markdown"].write_text(markdown(results), encoding="utf-8")
    paths["json"].write_text(json.dumps(results, indent=1, default=_json_default) + "\n", encoding="utf-8")
    plot_results(results, paths["plot"])
    return paths


def _json_default(value):
    try:
        return jsonable(value)
    except TypeError:  # results carry a few plain objects (paths); their text is what a reader wants
        return str(value)


def plot_results(results: dict, path: Path) -> None:
    """One panel per dataset: each system's score (solid) and end-model score (light), with sd bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(results["datasets"])
    fig, axes = plt.subplots(1, max(len(datasets), 1), figsize=(4.2 * max(len(datasets), 1), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        rows = [s for s in results["summary"] if s["dataset"] == dataset and s["score"]["mean"] is not None]
        x = np.arange(len(rows))
        score = [r["score"]["mean"] for r in rows]
        score_sd = [r["score"]["sd"] or 0 for r in rows]
        end = [r["end_model"]["mean"] or 0 for r in rows]
        end_sd = [r["end_model"]["sd"] or 0 for r in rows]
        ax.bar(x - 0.2, score, 0.4, yerr=score_sd, capsize=3, label="silver labels", color="tab:blue")
        ax.bar(x + 0.2, end, 0.4, yerr=end_sd, capsize=3, label="end model", color="tab:blue", alpha=0.35)
        ax.set_xticks(x, [r["system"] for r in rows], rotation=40, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"{dataset} ({results['datasets'][dataset]['score']})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
