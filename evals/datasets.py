"""Benchmark datasets (WRENCH JSON folders, a GoEmotions multi-label subset) and seeded draws.

A `BenchData` holds a train and a test split as arrays; a `Draw` picks, for one draw seed, the seed
rows (labelled, given to the systems) and the extra unlabelled train rows. Records from both splits
get ids "train:<id>" / "test:<id>" so they never collide in one unlabeled file.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lfagent.errors import InputError

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WRENCH_FOLDERS = {"youtube": "wrench-youtube", "sms": "wrench-sms", "trec": "wrench-trec"}
GOEMOTIONS_CLASSES = 6

# Task descriptions for the lfagent runs (LLM prompts read them); classes not listed get no description.
DESCRIPTIONS = {
    "youtube": ("Classify YouTube comments as spam or not.",
                {"HAM": "A genuine comment about the video or the artist",
                 "SPAM": "Self-promotion, links, requests to subscribe or visit"}),
    "sms": ("Classify SMS text messages as spam or not.",
            {"ham": "A normal personal or business message", "spam": "Unsolicited advertising, prizes, "
             "premium-rate numbers, requests to call or text back"}),
    "trec": ("Classify a question by the type of answer it expects.",
             {"DESC": "asks for a description, definition, reason or manner", "ENTY": "asks for an entity "
              "(thing, animal, colour, product, event, ...)", "HUM": "asks for a person or group",
              "ABBR": "asks for an abbreviation or what one stands for", "LOC": "asks for a place",
              "NUM": "asks for a number, date, count, amount or duration"}),
    "goemotions": ("Which emotions does this Reddit comment express? One or more of the classes.", {}),
}


@dataclass
class Split:
    ids: list[str]
    texts: list[str]
    y: np.ndarray                 # (n,) class index, or (n, k) 0/1 for multi-label
    L: np.ndarray | None = None   # WRENCH weak labels (n x m, -1 abstain), when the data has LFs

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class BenchData:
    name: str
    class_names: list[str]
    train: Split
    test: Split
    multi_label: bool = False
    positive_class: int | None = None   # binary tasks scored by F1 of this class (sms: spam)
    description: str = ""
    class_descriptions: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None   # where it was read from (evals/simulated reads the valid split there)

    @property
    def k(self) -> int:
        return len(self.class_names)

    @property
    def has_weak_labels(self) -> bool:
        return self.train.L is not None


@dataclass
class Draw:
    """One draw: seed rows and extra unlabelled rows, both as indices into `train`."""
    seed: int
    seed_rows: np.ndarray
    extra_rows: np.ndarray


# WRENCH trec's test split, unlike its train and valid splits, starts every question with its fine-grained
# TREC label ("ind Who was ...", "def What is ...") and keeps the original case, while train is lower-cased
# without it. The label word leaks the answer and the case shifts the distribution, so test questions are
# made to look like the train ones the seeds come from.
TREC_FINE_LABELS = frozenset(
    "abb exp animal body color cremat currency dismed event food instru lang letter other plant product religion "
    "sport substance symbol techmeth termeq veh word def desc manner reason gr ind title city country mount state "
    "code count date dist money ord perc period speed temp volsize weight".split())


def strip_trec_labels(texts: list[str]) -> list[str]:
    """Drop a leading fine-grained TREC label and lower-case, if every text has one; else leave them be."""
    heads = [text.split(" ", 1) for text in texts]
    if not texts or not all(len(h) == 2 and h[0] in TREC_FINE_LABELS for h in heads):
        return texts
    return [rest.lower() for _, rest in heads]


def _read_wrench_split(path: Path, prefix: str) -> Split:
    if not path.is_file():
        raise InputError("WRENCH split file not found", path=path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = list(raw)
    texts = [str(raw[i]["data"]["text"]) for i in ids]
    y = np.array([int(raw[i]["label"]) for i in ids], dtype=int)
    L = np.array([raw[i]["weak_labels"] for i in ids], dtype=int) if ids and "weak_labels" in raw[ids[0]] else None
    return Split(ids=[f"{prefix}:{i}" for i in ids], texts=texts, y=y, L=L)


def load_wrench(folder: str | Path, name: str | None = None) -> BenchData:
    """A WRENCH folder: train.json, test.json, label.json (class id -> name)."""
    folder = Path(folder)
    name = name or folder.name
    short = name.removeprefix("wrench-")
    label_file = folder / "label.json"
    if not label_file.is_file():
        raise InputError("not a WRENCH folder (no label.json)", path=folder)
    labels = json.loads(label_file.read_text(encoding="utf-8"))
    class_names = [labels[str(i)] for i in range(len(labels))]
    description, class_descriptions = DESCRIPTIONS.get(
        short, (f"Classify each text as one of: {', '.join(class_names)}.", {}))
    positive = class_names.index("spam") if short == "sms" and "spam" in class_names else None
    test = _read_wrench_split(folder / "test.json", "test")
    if short == "trec":
        test.texts = strip_trec_labels(test.texts)
    return BenchData(name=name, class_names=class_names, train=_read_wrench_split(folder / "train.json", "train"),
                     test=test, positive_class=positive,
                     description=description, class_descriptions=class_descriptions, folder=folder)


def _read_goemotions(path: Path, all_names: list[str]) -> list[tuple[str, str, set[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["id"], row["text"], {all_names[int(v)] for v in row["label"].split(",") if v.strip()})
                for row in reader]


def load_goemotions(folder: str | Path, *, n_classes: int = GOEMOTIONS_CLASSES, n_train: int = 2000,
                    n_test: int = 500, seed: int = 0) -> BenchData:
    """The `n_classes` most frequent non-neutral emotions; records with at least one, labels restricted.

    The subset (rows and classes) is fixed by `seed`, not by the draw: every draw sees the same data.
    """
    folder = Path(folder)
    all_names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    train_rows = _read_goemotions(folder / "train.tsv", all_names)
    counts: dict[str, int] = {}
    for _, _, labels in train_rows:
        for label in labels - {"neutral"}:
            counts[label] = counts.get(label, 0) + 1
    classes = sorted(counts, key=lambda c: (-counts[c], c))[:n_classes]
    rng = np.random.default_rng(seed)
    splits = []
    for rows, n, prefix in ((train_rows, n_train, "train"),
                            (_read_goemotions(folder / "test.tsv", all_names), n_test, "test")):
        keep = [r for r in rows if r[2] & set(classes)]
        chosen = sorted(rng.choice(len(keep), size=min(n, len(keep)), replace=False))
        y = np.array([[int(c in keep[i][2]) for c in classes] for i in chosen], dtype=int)
        splits.append(Split(ids=[f"{prefix}:{keep[i][0]}" for i in chosen], texts=[keep[i][1] for i in chosen], y=y))
    description, _ = DESCRIPTIONS["goemotions"]
    return BenchData(name="goemotions", class_names=classes, train=splits[0], test=splits[1], multi_label=True,
                     description=description, folder=folder)


def load_dataset(name: str, data_dir: str | Path = DEFAULT_DATA_DIR) -> BenchData:
    data_dir = Path(data_dir)
    if name in WRENCH_FOLDERS:
        return load_wrench(data_dir / WRENCH_FOLDERS[name], name)
    if name == "goemotions":
        return load_goemotions(data_dir / "goemotions")
    raise InputError(f"unknown dataset {name!r}; known: {', '.join([*WRENCH_FOLDERS, 'goemotions'])} "
                     "(or give a WRENCH folder with --wrench-dir)")


def make_draw(data: BenchData, *, n_seeds: int, extra_unlabeled: int, seed: int) -> Draw:
    """`n_seeds` random train rows, and up to `extra_unlabeled` other train rows, from draw `seed`.

    Single-label tasks need every class among the seeds (lfagent refuses otherwise): a missing class
    takes the place of a random seed of the most frequent class, drawn with the same seed.
    """
    n = len(data.train)
    if n_seeds >= n:
        raise InputError(f"{data.name}: {n_seeds} seeds but only {n} train rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    seed_rows = order[:n_seeds].copy()
    if not data.multi_label:
        seed_rows = _cover_every_class(data.train.y, seed_rows, order[n_seeds:], data.k, rng)
    rest = np.setdiff1d(order, seed_rows, assume_unique=True)
    rest = rest[rng.permutation(len(rest))][:extra_unlabeled]
    return Draw(seed=seed, seed_rows=np.sort(seed_rows), extra_rows=np.sort(rest))


def _cover_every_class(y: np.ndarray, seed_rows: np.ndarray, pool: np.ndarray, k: int, rng) -> np.ndarray:
    for c in range(k):
        if (y[seed_rows] == c).any():
            continue
        candidates = pool[y[pool] == c]
        if not len(candidates):
            continue
        counts = np.bincount(y[seed_rows], minlength=k)
        victims = np.flatnonzero(y[seed_rows] == counts.argmax())
        seed_rows[rng.choice(victims)] = rng.choice(candidates)
    return seed_rows
