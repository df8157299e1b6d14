"""Label models on the WRENCH human-LF matrices: fit on train weak labels, score on test.

Run: python benchmarks/label_model.py   (prints a Markdown table; BLAS threads pinned to 1)
Scores use argmax of predict_proba over all test rows (uncovered rows get each model's prior);
sms is scored by F1 of the spam class (id 1), youtube and trec by accuracy.
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
    tp = np.sum((predicted == 1) & (y == 1))
    precision, recall = tp / max(np.sum(predicted == 1), 1), tp / max(np.sum(y == 1), 1)
    return float(2 * precision * recall / (precision + recall)) if tp else 0.0


def ours(method: str, with_dev: bool = False):
    from lfagent.aggregate import LabelModel

    def run(name, k, L_train, L_test, dev):
        kwargs = {"L_dev": dev[0], "y_dev": dev[1]} if with_dev else {}
        return LabelModel(k, method).fit(L_train, seed=0, **kwargs).predict_proba(L_test)
    return run


def snorkel(name, k, L_train, L_test, dev):
    import torch
    from snorkel.labeling.model import LabelModel as SnorkelLabelModel
    torch.set_num_threads(1)  # threadpoolctl does not reach torch's intra-op pool
    model = SnorkelLabelModel(cardinality=k, verbose=False)
    model.fit(L_train, n_epochs=500, seed=0, progress_bar=False)
    return model.predict_proba(L_test)


def main() -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    models = {
        "lfagent LabelModel (auto, no dev labels)": ours("auto"),
        "lfagent LabelModel (auto, 100 valid labels as dev)": ours("auto", with_dev=True),
        "lfagent majority vote": ours("majority"),
        "Snorkel 0.10 LabelModel, 500 epochs, seed 0": snorkel,
    }
    splits = {name: {s: load(name, s) for s in ("train", "valid", "test")} for name in DATASETS}
    print("| model | youtube acc | sms F1 | trec acc | fit+predict s (yt/sms/trec) |")
    print("|---|---|---|---|---|")
    with threadpool_limits(1):
        for label, run in models.items():
            cells, times = [], []
            for name, k in DATASETS.items():
                (L_train, _), (L_valid, y_valid), (L_test, y_test) = (splits[name][s] for s in
                                                                      ("train", "valid", "test"))
                start = time.perf_counter()
                try:
                    probs = run(name, k, L_train, L_test, (L_valid[:100], y_valid[:100]))
                except Exception as exc:  # e.g. snorkel 0.10 vs a newer pandas: report, don't crash
                    cells.append(f"failed: {type(exc).__name__}")
                    times.append("-")
                    continue
                times.append(f"{time.perf_counter() - start:.2f}")
                cells.append(f"{figure(name, y_test, probs.argmax(axis=1)):.3f}")
            print(f"| {label} | {' | '.join(cells)} | {'/'.join(times)} |")
        print()
        print(scale_table())
    return 0


def scale_table(n: int = 1_000_000, m: int = 50, seed: int = 0) -> str:
    """Fit/predict time of Dawid-Skene on a synthetic n x m binary matrix (LFs vote y w.p. accuracy)."""
    from lfagent.aggregate import LabelModel
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    accuracy, propensity = rng.uniform(0.55, 0.95, m), rng.uniform(0.05, 0.3, m)
    fires = rng.random((n, m)) < propensity
    L = np.where(fires, np.where(rng.random((n, m)) < accuracy, y[:, None], 1 - y[:, None]), -1)
    start = time.perf_counter()
    model = LabelModel(2, "dawid_skene").fit(L, seed=0)
    fitted = time.perf_counter()
    accuracy_hat = float(np.mean(model.predict(L) == y))
    done = time.perf_counter()
    return ("| synthetic n x m | fit s | predict s | EM iterations | accuracy |\n|---|---|---|---|---|\n"
            f"| {n} x {m} | {fitted - start:.2f} | {done - fitted:.2f} | {model.ds_fit_.n_iter} | "
            f"{accuracy_hat:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
