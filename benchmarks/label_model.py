"""Label models on the WRENCH human-LF matrices: fit on train weak labels, score on test.

Run: python benchmarks/label_model.py [--scale]   (prints Markdown tables; BLAS threads pinned to 1;
--scale prints only the last table: fit and predict CPU time against Snorkel on synthetic matrices)
Scores use argmax of predict_proba over all test rows (uncovered rows get each model's prior);
sms is scored by F1 of the spam class (id 1) and by accuracy, youtube and trec by accuracy.
Then: how far lfagent's "metal" (numpy port of Snorkel's estimator) is from Snorkel itself, over seeds,
and fit times on synthetic matrices. Other jobs may share the machine: timings are noisy.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATASETS = {"youtube": 2, "sms": 2, "trec": 6}


def load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = json.loads((DATA / f"wrench-{name}" / f"{split}.json").read_text()).values()
    return (np.array([r["weak_labels"] for r in rows], dtype=np.int64),
            np.array([r["label"] for r in rows], dtype=np.int64))


def figure(name: str, y: np.ndarray, predicted: np.ndarray) -> float:
    if name != "sms":
        return float(np.mean(predicted == y))
    return spam_f1(y, predicted)


def spam_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    tp = np.sum((predicted == 1) & (y == 1))
    precision, recall = tp / max(np.sum(predicted == 1), 1), tp / max(np.sum(y == 1), 1)
    return float(2 * precision * recall / (precision + recall)) if tp else 0.0


def ours(method: str, with_dev: bool = False):
    from lfagent.fit import LabelModel

    def run(name, k, L_train, L_test, dev):
        kwargs = {"L_dev": dev[0], "y_dev": dev[1]} if with_dev else {}
        return LabelModel(k, method).fit(L_train, seed=0, **kwargs).predict_proba(L_test)
    return run


def snorkel(name, k, L_train, L_test, dev, seed: int = 0):
    import torch
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel
    torch.set_num_threads(1)  # threadpoolctl does not reach torch's intra-op pool
    model = SnorkelLabelModel(cardinality=k, verbose=False)
    model.fit(L_train, n_epochs=500, seed=seed, progress_bar=False)
    return model.predict_proba(L_test)


def average_metal_dawid_skene(name, k, L_train, L_test, dev):
    """Candidate default that was measured and rejected (below Snorkel on youtube)."""
    return (ours("metal")(name, k, L_train, L_test, dev) + ours("dawid_skene")(name, k, L_train, L_test, dev)) / 2


def main() -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    if "--scale" in sys.argv[1:]:  # only the timing table on synthetic matrices
        with threadpool_limits(1):
            print(scale_table())
        return 0
    models = {
        "lfagent LabelModel (auto, no dev labels) = metal": ours("auto"),
        "lfagent LabelModel (auto, 100 valid labels as dev)": ours("auto", with_dev=True),
        "lfagent metal (Snorkel's estimator in numpy)": ours("metal"),
        "lfagent dawid_skene": ours("dawid_skene"),
        "mean of metal and dawid_skene probabilities (rejected)": average_metal_dawid_skene,
        "lfagent majority vote": ours("majority"),
        "Snorkel 0.10 LabelModel, 500 epochs, seed 0": snorkel,
    }
    splits = {name: {s: load(name, s) for s in ("train", "valid", "test")} for name in DATASETS}
    print("| model | youtube acc | sms F1 (spam) | sms acc | trec acc | fit+predict s (yt/sms/trec) |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for label, run in models.items():
            print(f"| {label} | {model_row(run, splits)} |")
        print()
        print(agreement_table(splits))
        print()
        print(scale_table())
    return 0


def model_row(run, splits) -> str:
    cells, times = [], []
    for name, k in DATASETS.items():
        (L_train, _), (L_valid, y_valid), (L_test, y_test) = (splits[name][s] for s in ("train", "valid", "test"))
        start = time.perf_counter()
        try:
            probs = run(name, k, L_train, L_test, (L_valid[:100], y_valid[:100]))
        except Exception as exc:  # e.g. snorkel 0.10 vs a newer pandas: report, don't crash
            cells += [f"failed: {type(exc).__name__}"] * (2 if name == "sms" else 1)
            times.append("-")
            continue
        times.append(f"{time.perf_counter() - start:.2f}")
        predicted = probs.argmax(axis=1)
        cells.append(f"{figure(name, y_test, predicted):.3f}")
        if name == "sms":
            cells.append(f"{np.mean(predicted == y_test):.3f}")
    return f"{' | '.join(cells)} | {'/'.join(times)}"


def agreement_table(splits, seeds=(0, 1, 2)) -> str:
    """lfagent metal vs Snorkel, same seed: largest probability gap and argmax disagreements on test."""
    from lfagent.fit import LabelModel
    lines = ["| dataset | seed | metal figure | Snorkel figure | max abs prob diff | argmax disagreements |",
             "|---|---|---|---|---|---|"]
    for name, k in DATASETS.items():
        (L_train, _), (L_test, y_test) = splits[name]["train"], splits[name]["test"]
        for seed in seeds:
            ours_p = LabelModel(k, "metal").fit(L_train, seed=seed).predict_proba(L_test)
            theirs = snorkel(name, k, L_train, L_test, None, seed=seed)
            lines.append(f"| {name} | {seed} | {figure(name, y_test, ours_p.argmax(1)):.3f} | "
                         f"{figure(name, y_test, theirs.argmax(1)):.3f} | {np.abs(ours_p - theirs).max():.1e} | "
                         f"{int(np.sum(ours_p.argmax(1) != theirs.argmax(1)))} |")
    return "\n".join(lines)


SCALE_CASES = (  # rows, LFs, range of LF propensities (how often an LF votes)
    (100_000, 20, (0.05, 0.3)),
    (1_000_000, 50, (0.05, 0.3)),
    (1_000_000, 50, (0.002, 0.03)),  # keyword-like LFs: sparse votes, many rows share a vote pattern
)


def synthetic_matrix(n: int, m: int, propensity_range, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n x m binary label matrix: LF j votes w.p. propensity_j, and votes y w.p. accuracy_j."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    accuracy, propensity = rng.uniform(0.55, 0.95, m), rng.uniform(*propensity_range, m)
    fires = rng.random((n, m)) < propensity
    L = np.where(fires, np.where(rng.random((n, m)) < accuracy, y[:, None], 1 - y[:, None]), -1)
    return L, y


def timed(call, repeats: int):
    """(result, least CPU seconds, least wall seconds) over `repeats` calls: the least is the one
    other jobs on the machine disturbed least."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = call()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return result, min(cpu), min(wall)


def scale_table(cases=SCALE_CASES, repeats: int = 2, seed: int = 0) -> str:
    """CPU and wall time of fit and predict_proba on synthetic matrices, lfagent against Snorkel 0.10.

    lfagent runs as users get it: LabelModel(2) without dev labels (Snorkel's estimator, "metal"),
    and with 100 dev labels as the pipeline passes its seeds (fits dawid_skene and metal, picks one).
    """
    import torch
    from lfagent.fit import LabelModel
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel
    torch.set_num_threads(1)

    def snorkel_fit(L):
        model = SnorkelLabelModel(cardinality=2, verbose=False)
        model.fit(L, n_epochs=500, seed=0, progress_bar=False)
        return model

    lines = ["| rows x LFs | LF propensity | lfagent configuration | lfagent fit CPU s (wall) | "
             "Snorkel fit CPU s (wall) | CPU ratio | predict_proba CPU s lfagent / Snorkel | "
             "accuracy lfagent / Snorkel |", "|---|---|---|---|---|---|---|---|"]
    for n, m, propensity in cases:
        L, y = synthetic_matrix(n, m, propensity, seed)
        dev = np.random.default_rng(seed + 1).choice(n, 100, replace=False)
        theirs, their_cpu, their_wall = timed(lambda: snorkel_fit(L), repeats)
        their_probs, their_predict, _ = timed(lambda: theirs.predict_proba(L), repeats)
        theirs = None  # free Snorkel's model before lfagent's fits
        configs = {"auto, no dev labels (= metal)": {},
                   "auto, 100 dev labels (pipeline default)": {"L_dev": L[dev], "y_dev": y[dev]}}
        for label, kwargs in configs.items():
            ours_model, our_cpu, our_wall = timed(lambda: LabelModel(2).fit(L, seed=0, **kwargs), repeats)
            our_probs, our_predict, _ = timed(lambda: ours_model.predict_proba(L), repeats)
            chosen = ours_model.chosen_method_
            lines.append(
                f"| {n:,} x {m} | {propensity[0]}-{propensity[1]} | {label} -> {chosen} | "
                f"{our_cpu:.2f} ({our_wall:.2f}) | {their_cpu:.2f} ({their_wall:.2f}) | "
                f"{our_cpu / their_cpu:.2f} | {our_predict:.2f} / {their_predict:.2f} | "
                f"{np.mean(our_probs.argmax(1) == y):.4f} / {np.mean(their_probs.argmax(1) == y):.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
