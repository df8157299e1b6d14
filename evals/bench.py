"""The benchmark loop: datasets x draws x systems -> per-draw rows and per-(dataset, system) summaries.

A system that fails on a draw is recorded with its error and the loop goes on: one broken LLM call
must not throw away an hour of runs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import BaseModel, Field

from evals.datasets import DEFAULT_DATA_DIR, BenchData, Draw, load_dataset, load_wrench, make_draw
from evals.logreg import fit_predict_weighted_logreg
from evals.metrics import SystemOutput, prediction_scores, score_name, summarize
from evals.systems import DrawContext, applicable, run_system


class BenchConfig(BaseModel):
    datasets: list[str] = Field(default_factory=lambda: ["youtube", "sms", "trec", "goemotions"])
    systems: list[str]
    draws: int = 5
    first_draw: int = 0
    n_seeds: int = 100
    extra_unlabeled: int = 2000
    llm: str = "local"
    rounds: int = 2
    max_llm_calls: int | None = None
    zeroshot_limit: int | None = None
    wrench_dirs: list[str] = Field(default_factory=list)
    data_dir: str = str(DEFAULT_DATA_DIR)


def load_all(config: BenchConfig) -> list[BenchData]:
    found = [load_dataset(name, config.data_dir) for name in config.datasets]
    found += [load_wrench(path) for path in config.wrench_dirs]
    return found


def make_embedder() -> Callable[[list[str]], np.ndarray]:
    from lfagent.data.embed import Embedder
    from lfagent.data.embed import default_cache_dir

    embedder = Embedder(default_cache_dir() / "embeddings.sqlite")
    return embedder.encode


def _zeroshot_cache() -> Path:
    # Zero-shot answers depend on the record, not the draw: later draws reuse them (tokens still count).
    from lfagent.data.embed import default_cache_dir

    return default_cache_dir() / "evals-zeroshot-llm.sqlite"


def run_benchmark(config: BenchConfig, *, say: Callable[[str], None] = lambda m: None,
                  on_run_done: Callable[[dict], None] | None = None, work_dir: Path | None = None) -> dict:
    """Run everything; returns {"config", "datasets": {name: meta}, "runs": [...], "summary": [...]}.

    `on_run_done` gets the results so far after every run (the current dataset summarised over its runs so
    far), so that a benchmark stopped after hours keeps its tables, not only its progress lines.
    """
    embed = make_embedder()
    results = {"config": config.model_dump(), "datasets": {}, "runs": [], "summary": []}
    for data in load_all(config):
        results["datasets"][data.name] = _dataset_meta(data)
        test_emb = embed(data.test.texts)
        for draw_seed in range(config.first_draw, config.first_draw + config.draws):
            draw = make_draw(data, n_seeds=config.n_seeds, extra_unlabeled=config.extra_unlabeled, seed=draw_seed)
            ctx = DrawContext(data=data, draw=draw, embed=embed, llm=config.llm, rounds=config.rounds,
                              max_llm_calls=config.max_llm_calls, zeroshot_limit=config.zeroshot_limit,
                              work_dir=work_dir, llm_cache=_zeroshot_cache())
            for system in config.systems:
                if not applicable(system, data):
                    continue
                results["runs"].append(_run_one(system, ctx, test_emb, say))
                if on_run_done:
                    on_run_done({**results, "summary": results["summary"]
                                 + summarize_dataset(data.name, config.systems, results["runs"])})
        results["summary"] += summarize_dataset(data.name, config.systems, results["runs"])
    return results


def _dataset_meta(data: BenchData) -> dict:
    return {"classes": data.class_names, "multi_label": data.multi_label, "n_train": len(data.train),
            "n_test": len(data.test), "n_lfs": None if data.train.L is None else int(data.train.L.shape[1]),
            "score": score_name(data.multi_label, data.positive_class, data.class_names)}


def _run_one(system: str, ctx: DrawContext, test_emb: np.ndarray, say) -> dict:
    data, draw = ctx.data, ctx.draw
    row = {"dataset": data.name, "system": system, "draw": draw.seed, "n_seeds": len(draw.seed_rows),
           "n_extra_unlabeled": len(draw.extra_rows)}
    try:
        out = run_system(system, ctx)
    except Exception as exc:  # keep going; the table shows the failure
        say(f"{data.name} draw {draw.seed} {system}: FAILED {type(exc).__name__}: {exc}")
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    row.update(score_output(out, data, draw, test_emb, ctx.embed))
    say(f"{data.name} draw {draw.seed} {system}: score {row['score']:.3f}"
        + (f", end model {row['end_model']:.3f}" if row.get("end_model") is not None else "")
        + f", coverage {row['coverage']:.2f} ({row['wall_s']:.1f}s)")
    return row


def score_output(out: SystemOutput, data: BenchData, draw: Draw, test_emb: np.ndarray, embed) -> dict:
    """Scores of the silver test labels, and of the end model trained on the silver train labels.

    The end model trains on every extra train row, covered or not, with its silver label weighted by the
    system's confidence in it (evals/logreg.py says why this weighting): a row no LF covers carries what
    the system's probabilities say of it, so more coverage cannot make the end model worse by adding rows.
    """
    y_test = data.test.y[out.test_rows]
    scores = prediction_scores(out.test_probs, y_test, multi_label=data.multi_label,
                               positive_class=data.positive_class, decisions=out.test_decisions)
    scores.update(coverage=float(np.mean(out.test_covered)) if len(out.test_covered) else 0.0,
                  n_scored=len(out.test_rows), llm_calls=out.llm_calls, llm_tokens=out.llm_tokens,
                  wall_s=out.wall_s, note=out.note, **out.extra)
    scores["end_model"] = None
    if out.train_probs is not None and len(draw.extra_rows):
        texts = [data.train.texts[i] for i in draw.extra_rows]
        soft = np.clip(np.asarray(out.train_probs, dtype=float), 0.0, 1.0)
        if not data.multi_label:
            soft = soft / soft.sum(axis=1, keepdims=True).clip(1e-12)
        probs = fit_predict_weighted_logreg(embed(texts), soft, test_emb, k=data.k, multi_label=data.multi_label,
                                            decisions=out.train_decisions, seed=draw.seed)
        scores["end_model"] = prediction_scores(probs, data.test.y, multi_label=data.multi_label,
                                                positive_class=data.positive_class)["score"]
        scores["end_model_train_rows"] = len(texts)
    return scores


def summarize_dataset(name: str, systems: list[str], runs: list[dict]) -> list[dict]:
    out = []
    for system in systems:
        rows = [r for r in runs if r["dataset"] == name and r["system"] == system]
        if not rows:
            continue
        ok = [r for r in rows if "error" not in r]
        summary = {"dataset": name, "system": system, **summarize(ok), "failed": len(rows) - len(ok)}
        if len(ok) < len(rows):
            errors = sorted({r["error"] for r in rows if "error" in r})
            summary["note"] = "; ".join(filter(None, [summary["note"], f"{len(rows) - len(ok)} failed: {errors[0]}"]))
        out.append(summary)
    return out


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
