"""Do two checkouts of lfagent give the same label-model probabilities on the WRENCH human-LF matrices?

Run each checkout, then compare (prints a Markdown table of the largest absolute difference):
    PYTHONPATH=OLD_CHECKOUT python benchmarks/label_model_parity.py dump old.npz
    PYTHONPATH=NEW_CHECKOUT python benchmarks/label_model_parity.py dump new.npz
    python benchmarks/label_model_parity.py compare old.npz new.npz
Every method, with and without 100 dev labels for "auto", seeds 0 and 1, predict_proba on train and test.
`dump PATH --scale` adds the synthetic matrices of `label_model.py --scale` (fit and predict on the
matrix itself, seed 0): at 100k rows and more, fits run on every row rather than on distinct rows.
"""
from __future__ import annotations

import sys

import numpy as np

from label_model import DATASETS, SCALE_CASES, load, synthetic_matrix

CHOICES = ("majority", "dawid_skene", "metal")


def dump(path: str, scale: bool = False) -> None:
    from lfagent.fit import LabelModel

    out = {}
    for name, k in DATASETS.items():
        (L_train, _), (L_valid, y_valid), (L_test, _) = (load(name, s) for s in ("train", "valid", "test"))
        for method, with_dev in (("auto", False), ("auto", True), ("metal", False), ("dawid_skene", False),
                                 ("majority", False)):
            kwargs = {"L_dev": L_valid[:100], "y_dev": y_valid[:100]} if with_dev else {}
            for seed in (0, 1):
                model = LabelModel(k, method).fit(L_train, seed=seed, **kwargs)
                key = f"{name}/{method}{' +dev' if with_dev else ''}/seed {seed}"
                out[f"{key}/train"] = model.predict_proba(L_train)
                out[f"{key}/test"] = model.predict_proba(L_test)
                out[f"{key}/chosen"] = np.array([CHOICES.index(model.chosen_method_)])
    if scale:
        out.update(scale_dump())
    np.savez(path, **out)


def scale_dump() -> dict[str, np.ndarray]:
    from lfagent.fit import LabelModel

    out = {}
    for n, m, propensity in SCALE_CASES:
        L, y = synthetic_matrix(n, m, propensity, 0)
        dev = np.random.default_rng(1).choice(n, 100, replace=False)
        for method, kwargs in (("auto", {}), ("auto +dev", {"L_dev": L[dev], "y_dev": y[dev]}),
                               ("dawid_skene", {})):
            model = LabelModel(2, method.split()[0]).fit(L, seed=0, **kwargs)
            key = f"{n}x{m} {propensity[0]}-{propensity[1]}/{method}/seed 0"
            out[f"{key}/all"] = model.predict_proba(L)
            out[f"{key}/chosen"] = np.array([CHOICES.index(model.chosen_method_)])
    return out


def compare(path_a: str, path_b: str) -> None:
    a, b = np.load(path_a), np.load(path_b)
    if set(a.files) != set(b.files):
        raise SystemExit(f"the dumps hold different keys: {sorted(set(a.files) ^ set(b.files))}")
    worst: dict[str, float] = {}
    for key in a.files:
        group = key.rsplit("/", 2)[0]  # dataset/method, over seeds and splits
        worst[group] = max(worst.get(group, 0.0), float(np.abs(a[key] - b[key]).max(initial=0.0)))
    print("| dataset / method | max abs difference of predict_proba (and chosen method), seeds 0-1, train+test |")
    print("|---|---|")
    for group, diff in worst.items():
        print(f"| {group} | {diff:.1e} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "dump":
        dump(sys.argv[2], scale="--scale" in sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
