"""The systems under test. Each takes a `DrawContext` and returns a `SystemOutput` (see metrics.py).

- lfagent-<LLM SPEC>  lfagent itself, in-process, on a task written for the draw (lfagent-none,
                      lfagent-local, lfagent-openai:MODEL, ...), in its default configuration (the
                      expert fine-tuned on the seeds, or $LFAGENT_EXPERT); `+finetuned` / `+frozen` force
                      one expert whatever the environment says;
                      `+end`: the end model `lfagent train` fine-tunes on a fine-tuned run's silver
                      labels, scored as the system's labels
- lr-seeds            logistic regression on MiniLM embeddings of the seeds (C=10, balanced: a tuned baseline)
- lr-seeds-default    the same with sklearn's defaults (C=1, no class weights)
- setfit-seeds        MiniLM fine-tuned on the seeds with SetFit's recipe + balanced logistic head
                      (lfagent/fit/fewshot.py; needs the `embed` extra)
- zeroshot            the LLM labels each test record from a short prompt listing the classes
- lfagent-expert / lfagent-liar / expert-label-all
                      simulated LLMs behind a real OpenAI-compatible server (see evals/simulated/systems.py)
- wrench-mv / wrench-lfagent-lm / wrench-snorkel
                      the WRENCH human LFs (weak_labels) through majority vote, lfagent.LabelModel and
                      Snorkel 0.10's LabelModel; fit on all train rows, no seeds used
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from evals.datasets import BenchData, Draw
from evals.logreg import fit_predict_logreg
from evals.metrics import SystemOutput

NO_LLM_SYSTEMS = ["lfagent-none", "lr-seeds", "lr-seeds-default", "wrench-mv", "wrench-lfagent-lm", "wrench-snorkel"]
WRENCH_SYSTEMS = {"wrench-mv", "wrench-lfagent-lm", "wrench-snorkel"}


@dataclass
class DrawContext:
    data: BenchData
    draw: Draw
    embed: Callable[[list[str]], np.ndarray]   # texts -> normalised MiniLM embeddings (cached)
    llm: str = "local"                          # spec for zeroshot
    rounds: int = 2
    max_llm_calls: int | None = None
    zeroshot_limit: int | None = None
    work_dir: Path | None = None                # where lfagent run dirs go (a temporary folder if None)
    llm_cache: Path | None = None               # response cache of the zeroshot system

    def train_texts(self, rows) -> list[str]:
        return [self.data.train.texts[i] for i in rows]

    def seed_labels(self) -> np.ndarray:
        return self.data.train.y[self.draw.seed_rows]


def applicable(system: str, data: BenchData) -> bool:
    return system not in WRENCH_SYSTEMS or data.has_weak_labels


def run_system(system: str, ctx: DrawContext) -> SystemOutput:
    """Run one system on one draw and time it."""
    from evals.simulated.systems import is_simulated, run_simulated

    started = time.perf_counter()
    if is_simulated(system):  # simulated LLMs behind a loopback server (evals/simulated/)
        out = run_simulated(system, ctx)
    elif system.startswith("lfagent-"):
        llm, _, variant = system.removeprefix("lfagent-").partition("+")
        if variant not in ("", "frozen", "finetuned", "end"):
            raise ValueError(f"unknown lfagent variant {variant!r} in {system!r} (known: +frozen, +finetuned, +end)")
        expert = {"frozen": "frozen", "finetuned": "finetuned", "end": "finetuned"}.get(variant)
        out = run_lfagent(ctx, llm, expert=expert, end=variant == "end")
    elif system == "lr-seeds":
        out = run_lr_seeds(ctx)
    elif system == "lr-seeds-default":  # sklearn's defaults: C=1, no class weights
        out = run_lr_seeds(ctx, C=1.0, balanced=False)
    elif system == "setfit-seeds":
        out = run_setfit_seeds(ctx)
    elif system == "zeroshot":
        out = run_zeroshot(ctx)
    elif system in WRENCH_SYSTEMS:
        out = run_wrench_label_model(ctx, system.removeprefix("wrench-"))
    else:
        raise ValueError(f"unknown system {system!r}")
    out.wall_s = time.perf_counter() - started
    return out


# ---- lfagent ---------------------------------------------------------------------------------------

def write_task_dir(folder: Path, ctx: DrawContext) -> Path:
    """task.yaml + seeds.jsonl + unlabeled.jsonl (test rows, then the extra train rows) for one draw."""
    data, draw = ctx.data, ctx.draw
    folder.mkdir(parents=True, exist_ok=True)
    task = {"name": f"{data.name}-draw{draw.seed}", "description": data.description,
            "classes": [{"name": c, "description": data.class_descriptions.get(c, "")} for c in data.class_names],
            "multi_label": data.multi_label, "seeds": "seeds.jsonl", "unlabeled": "unlabeled.jsonl"}
    (folder / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), encoding="utf-8")
    train, test = data.train, data.test
    with (folder / "seeds.jsonl").open("w", encoding="utf-8") as handle:
        for i in draw.seed_rows:
            handle.write(json.dumps({"id": train.ids[i], "text": train.texts[i],
                                     "label": _label_value(train.y[i], data)}) + "\n")
    with (folder / "unlabeled.jsonl").open("w", encoding="utf-8") as handle:
        for rid, text in [*zip(test.ids, test.texts), *((train.ids[i], train.texts[i]) for i in draw.extra_rows)]:
            handle.write(json.dumps({"id": rid, "text": text}) + "\n")
    return folder / "task.yaml"


def _label_value(y, data: BenchData):
    if data.multi_label:
        return [c for c, on in zip(data.class_names, y) if on]
    return data.class_names[int(y)]


def read_silver(path: Path, class_names: list[str]) -> dict[str, tuple[np.ndarray, bool, np.ndarray | None]]:
    """id -> (probs, covered, multi-label decisions from the row's `labels`, else None)."""
    out = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            decided = (np.array([c in row["labels"] for c in class_names]) if "labels" in row else None)
            out[str(row["id"])] = (np.array([row["probs"][c] for c in class_names], float), bool(row["covered"]),
                                   decided)
    return out


def run_lfagent(ctx: DrawContext, llm: str, *, annotate: int | None = None, expert: str | None = None,
                end: bool = False, annotate_batch: int | None = None) -> SystemOutput:
    from lfagent.agent.run import run_agent

    with tempfile.TemporaryDirectory(prefix="lfagent-eval-", dir=ctx.work_dir) as tmp:
        task_path = write_task_dir(Path(tmp) / "task", ctx)
        run_dir = Path(tmp) / "run"
        summary = run_agent(task_path, run_dir, llm=llm, rounds=ctx.rounds, max_llm_calls=ctx.max_llm_calls,
                            seed=ctx.draw.seed, embed=True, annotate=annotate, expert=expert,
                            annotate_batch=annotate_batch)
        labels = run_dir / "silver.jsonl"
        if end:  # the end model fine-tuned on those silver labels labels the same records
            from lfagent.fit.end_model import train_end_model
            from lfagent.generate import generate

            train_end_model(run_dir, Path(tmp) / "end", seed=ctx.draw.seed)
            labels = Path(tmp) / "end.jsonl"
            generate(Path(tmp) / "end", [str(task_path.parent / "unlabeled.jsonl")], labels)
        silver = read_silver(labels, ctx.data.class_names)
    test_probs, test_cov, test_decided = _lookup(silver, ctx.data.test.ids)
    train_probs, train_cov, train_decided = _lookup(silver, [ctx.data.train.ids[i] for i in ctx.draw.extra_rows])
    usage = summary.get("llm") or {}
    metrics = summary.get("metrics") or {}
    return SystemOutput(test_probs=test_probs, test_covered=test_cov, test_rows=np.arange(len(ctx.data.test)),
                        train_probs=train_probs, train_covered=train_cov, test_decisions=test_decided,
                        train_decisions=train_decided, llm_calls=int(usage.get("calls", 0)),
                        llm_tokens=int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)),
                        extra={"n_kept": metrics.get("n_kept"), "label_model": metrics.get("label_model"),
                               "seed_accuracy_crossfit": metrics.get("seed_accuracy")})


def _lookup(silver: dict, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    probs = np.array([silver[i][0] for i in ids]) if ids else np.zeros((0, 0))
    covered = np.array([silver[i][1] for i in ids], bool)
    decided = [silver[i][2] for i in ids]
    decisions = np.array(decided, bool) if decided and all(d is not None for d in decided) else None
    return probs, covered, decisions


# ---- embeddings + logistic regression --------------------------------------------------------------

def run_lr_seeds(ctx: DrawContext, *, C: float = 10.0, balanced: bool = True) -> SystemOutput:
    data, draw = ctx.data, ctx.draw
    X_seed = ctx.embed(ctx.train_texts(draw.seed_rows))
    X_test = ctx.embed(data.test.texts)
    X_extra = ctx.embed(ctx.train_texts(draw.extra_rows))
    probs = fit_predict_logreg(X_seed, ctx.seed_labels(), np.vstack([X_test, X_extra]), k=data.k,
                               multi_label=data.multi_label, seed=draw.seed, C=C, balanced=balanced)
    n = len(data.test)
    return SystemOutput(test_probs=probs[:n], test_covered=np.ones(n, bool), test_rows=np.arange(n),
                        train_probs=probs[n:], train_covered=np.ones(len(draw.extra_rows), bool))


def run_setfit_seeds(ctx: DrawContext) -> SystemOutput:
    from lfagent.fit.fewshot import FewShotExpert

    data, draw = ctx.data, ctx.draw
    expert = FewShotExpert(k=data.k, multi_label=data.multi_label, seed=draw.seed)
    expert.fit(ctx.train_texts(draw.seed_rows), ctx.seed_labels())
    n = len(data.test)
    # Test rows only: the end model on silver train rows does not apply to a seeds-only classifier.
    return SystemOutput(test_probs=expert.predict_proba(data.test.texts), test_covered=np.ones(n, bool),
                        test_rows=np.arange(n))


# ---- WRENCH human LFs ------------------------------------------------------------------------------

def run_wrench_label_model(ctx: DrawContext, method: str) -> SystemOutput:
    data, draw = ctx.data, ctx.draw
    L_train, L_test = data.train.L, data.test.L
    L_extra = L_train[draw.extra_rows]
    if method == "mv":
        from lfagent.fit import majority_vote_proba

        test_probs, train_probs = (majority_vote_proba(L, data.k) for L in (L_test, L_extra))
    elif method == "lfagent-lm":
        from lfagent.fit import LabelModel

        model = LabelModel(cardinality=data.k).fit(L_train, seed=draw.seed)
        test_probs, train_probs = model.predict_proba(L_test), model.predict_proba(L_extra)
    elif method == "snorkel":
        test_probs, train_probs = _snorkel_probs(L_train, [L_test, L_extra], data.k, draw.seed)
    else:
        raise ValueError(f"unknown WRENCH label model {method!r}")
    return SystemOutput(test_probs=test_probs, test_covered=(L_test != -1).any(axis=1),
                        test_rows=np.arange(len(data.test)), train_probs=train_probs,
                        train_covered=(L_extra != -1).any(axis=1))


def _snorkel_probs(L_train: np.ndarray, targets: list[np.ndarray], k: int, seed: int) -> list[np.ndarray]:
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel
    from threadpoolctl import threadpool_limits

    import torch

    # Snorkel's small dense products are far slower with two threads on this machine: pin BLAS
    # (threadpoolctl) and torch's own intra-op pool, which threadpoolctl does not reach (10 s -> 1 s).
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            model = SnorkelLabelModel(cardinality=k, verbose=False)
            model.fit(L_train, n_epochs=500, seed=seed, log_freq=500, progress_bar=False)
            return [model.predict_proba(L) for L in targets]
    finally:
        torch.set_num_threads(torch_threads)


# ---- zero-shot LLM ---------------------------------------------------------------------------------

def zeroshot_prompt(text: str, data: BenchData) -> str:
    lines = [f"- {c}" + (f": {data.class_descriptions[c]}" if data.class_descriptions.get(c) else "")
             for c in data.class_names]
    ask = ("List every class that applies, separated by commas, and nothing else." if data.multi_label
           else "Answer with exactly one class name and nothing else.")
    return f"{data.description}\nClasses:\n" + "\n".join(lines) + f"\n\nText: {text[:1000]}\n\n{ask}"


def parse_class_answer(answer: str, class_names: list[str], *, multi_label: bool) -> list[int]:
    """Class indices named in the answer: the earliest one (single-label) or all of them (multi-label)."""
    found = []
    for c, name in enumerate(class_names):
        match = re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", answer, flags=re.IGNORECASE)
        if match:
            found.append((match.start(), c))
    found.sort()
    if multi_label:
        return sorted(c for _, c in found)
    return [found[0][1]] if found else []


def run_zeroshot(ctx: DrawContext, *, every_record: bool = False) -> SystemOutput:
    """The LLM labels each test record, one call each. `every_record`: the draw's extra train rows too, so that
    it labels every record lfagent labels (its calls are then the whole job's, and its labels train the end
    model)."""
    from lfagent.llm import ChatRequest, LLMFailure, ResponseCache, make_llm

    data, n = ctx.data, len(ctx.data.test)
    rows = np.arange(n)
    note = ""
    if ctx.zeroshot_limit and ctx.zeroshot_limit < n:
        rows = np.sort(np.random.default_rng(ctx.draw.seed).choice(n, ctx.zeroshot_limit, replace=False))
        note = f"zeroshot scored on a random {len(rows)} of {n} test rows"
    texts = [data.test.texts[i] for i in rows] + (ctx.train_texts(ctx.draw.extra_rows) if every_record else [])
    cache = ResponseCache(ctx.llm_cache) if ctx.llm_cache else None
    llm = make_llm(ctx.llm, cache=cache)
    requests = [ChatRequest.from_prompt(zeroshot_prompt(text, data), temperature=0.0,
                                        max_tokens=40 if data.multi_label else 12) for text in texts]
    try:
        responses = llm.chat_many(requests)
    finally:
        llm.close()
    probs = np.zeros((len(texts), data.k)) if data.multi_label else np.full((len(texts), data.k), 1.0 / data.k)
    covered = np.zeros(len(texts), bool)
    tokens = 0
    for j, response in enumerate(responses):
        if isinstance(response, LLMFailure):
            continue
        # Cached answers count too: the cost of this system is O(N) tokens whether or not we paid twice.
        tokens += response.prompt_tokens + response.completion_tokens
        chosen = parse_class_answer(response.text, data.class_names, multi_label=data.multi_label)
        if chosen:
            probs[j] = 0.0
            probs[j, chosen] = 1.0
            covered[j] = True
    m = len(rows)
    return SystemOutput(test_probs=probs[:m], test_covered=covered[:m], test_rows=rows,
                        train_probs=probs[m:] if every_record else None,
                        train_covered=covered[m:] if every_record else None, llm_calls=len(texts),
                        llm_tokens=tokens, note=note)
