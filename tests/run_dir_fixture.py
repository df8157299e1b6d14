"""A small, fully known run directory, written in the formats of lfagent/rundir/files.py and outputs.py.

Used by the report, card and audit tests so they stay fast and independent of the real pipeline.
Single-label HAM/SPAM: three keyword/regex LFs that apply without a model, one embedding LF and one code
LF (skipped when embeddings or the sandbox are off). Seeds in `flip` get the wrong label in heldout.jsonl
while their cross-fitted probabilities stay confident in the right one: planted label errors.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from lfagent.rundir.files import RunModel
from lfagent.fit.calibrator import Calibrator
from lfagent.lf import LabelingFunction, Provenance, lf_set_hash

CLASSES = ["HAM", "SPAM"]
SPAM_TEXTS = ["check out my channel please", "subscribe to my channel for free stuff",
              "visit http://spam.example now", "subscribe and win http://x.example"]
HAM_TEXTS = ["love this song so much", "this song brings back memories", "i love her voice",
             "the song of the summer"]
NEUTRAL_TEXTS = ["first comment", "who is watching in 2024", "great video"]
MIXED_TEXTS = ["love this song, subscribe to my channel"]  # LFs disagree
CREATED = 1_700_000_000.0  # 2023-11-14 22:13 UTC


def kept_lfs() -> list[LabelingFunction]:
    return [
        LabelingFunction(name="kw_channel", kind="keywords", label="SPAM", keywords=["channel", "subscribe"],
                         provenance=Provenance(source="mined:ngram")),
        LabelingFunction(name="rx_http", kind="regex", label="SPAM", pattern=r"https?://",
                         provenance=Provenance(source="user")),
        LabelingFunction(name="kw_song", kind="keywords", label="HAM", keywords=["song", "love"],
                         provenance=Provenance(source="llm:keywords")),
        LabelingFunction(name="emb_spam", kind="embedding", label="SPAM", prototypes=[[1.0] + [0.0] * 383],
                         threshold=0.8, provenance=Provenance(source="mined:prototype")),
        LabelingFunction(name="code_caps", kind="code", label="SPAM",
                         source="def label(record):\n    return 'SPAM' if record['text'].isupper() else None\n",
                         provenance=Provenance(source="llm:code")),
    ]


def lf_stats_dict(name: str, label: int, coverage: float, accuracy: float | None, votes: int) -> dict:
    correct = int(round((accuracy or 0.0) * votes))
    return {"name": name, "label": label, "coverage": coverage, "overlap": coverage / 3, "conflict": coverage / 6,
            "seed_coverage": votes / 40, "seed_votes": votes, "seed_correct": correct, "seed_accuracy": accuracy,
            "ci_low": max(0.0, (accuracy or 0.0) - 0.15), "ci_high": min(1.0, (accuracy or 0.0) + 0.08),
            "chance": 0.5, "per_class_precision": {"0": None, "1": accuracy}, "polarity": [label]}


def unlabeled_texts(n: int) -> list[str]:
    pool = SPAM_TEXTS + HAM_TEXTS + NEUTRAL_TEXTS + MIXED_TEXTS
    return [f"{pool[i % len(pool)]} #{i}" for i in range(n)]


def silver_probs(text: str) -> tuple[np.ndarray, bool]:
    spam = any(w in text for w in ("channel", "subscribe", "http"))
    ham = any(w in text for w in ("song", "love"))
    if spam and not ham:
        return np.array([0.08, 0.92]), True
    if ham and not spam:
        return np.array([0.9, 0.1]), True
    return np.array([0.55, 0.45]), spam or ham


def heldout_rows(n_seeds: int, flip: set[int], rng, ambiguous: set[int] = frozenset()) -> list[dict]:
    """Seeds alternate HAM/SPAM. `flip`: wrong label, model confident in the right one. `ambiguous`:
    right label, model leaning slightly the wrong way (a weaker contradiction than a flip)."""
    rows = []
    for i in range(n_seeds):
        true = i % 2
        confident = rng.uniform(0.9, 0.97) if i in flip else rng.uniform(0.55, 0.95)
        if i in ambiguous:
            confident = rng.uniform(0.35, 0.45)
        p_spam = confident if true == 1 else 1 - confident
        given = CLASSES[1 - true] if i in flip else CLASSES[true]
        text = (SPAM_TEXTS if true else HAM_TEXTS)[i % 4] + f" (seed {i})"
        rows.append({"id": f"s{i}", "text": text, "label": given,
                     "probs": {"HAM": round(1 - p_spam, 4), "SPAM": round(p_spam, 4)}})
    return rows


def write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def build_run_dir(root: Path, *, n_unlabeled: int = 55, n_seeds: int = 40, flip: tuple[int, ...] = (3, 10, 17),
                  ambiguous: tuple[int, ...] = (6, 21), seed: int = 0) -> Path:
    """Write RUN_DIR (and the task's data folder) under `root`; returns RUN_DIR."""
    rng = np.random.default_rng(seed)
    data_dir, run_dir = root / "data", root / "run"
    data_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    texts = unlabeled_texts(n_unlabeled)
    write_jsonl(data_dir / "unlabeled.jsonl", ({"id": f"u{i}", "text": t} for i, t in enumerate(texts)))
    task = {"name": "fixture-spam", "description": "Spam or not.",
            "classes": [{"name": "HAM", "description": "a real comment"}, {"name": "SPAM", "description": "promo"}],
            "multi_label": False, "text_field": "text", "label_field": "label", "id_field": "id",
            "seeds": "seeds.jsonl", "unlabeled": "unlabeled.jsonl", "test": None, "base_dir": str(data_dir)}
    lfs = kept_lfs()
    model = RunModel(run_id="fixture0run1", task=task, lfs=lfs, label_model=None, calibrator=Calibrator(),
                     fallback=None, prior=[0.5, 0.5], lf_set_hash=lf_set_hash(lfs), uses_embeddings=False)
    (run_dir / "model.json").write_text(model.model_dump_json(), encoding="utf-8")
    silver = []
    for i, text in enumerate(texts):
        probs, covered = silver_probs(text)
        silver.append({"id": f"u{i}", "label": CLASSES[int(probs.argmax())],
                       "probs": {c: float(p) for c, p in zip(CLASSES, probs)}, "covered": covered})
    write_jsonl(run_dir / "silver.jsonl", silver)
    write_jsonl(run_dir / "heldout.jsonl", heldout_rows(n_seeds, set(flip), rng, set(ambiguous)))
    stats = [lf_stats_dict("kw_channel", 1, 0.27, 0.95, 20), lf_stats_dict("rx_http", 1, 0.18, 1.0, 9),
             lf_stats_dict("kw_song", 0, 0.36, 0.9, 20), lf_stats_dict("emb_spam", 1, 0.2, 0.8, 10),
             lf_stats_dict("code_caps", 1, 0.01, 0.75, 4)]
    (run_dir / "lfs.json").write_text(json.dumps([{"lf": lf.model_dump(mode="json"), "stats": s}
                                                  for lf, s in zip(lfs, stats)]), encoding="utf-8")
    dropped = [("kw_the", "no seed votes (needs >= 3)", lf_stats_dict("kw_the", 0, 0.5, None, 0)),
               ("kw_video", "seed accuracy 0.55 [0.30, 0.77]: lower bound 0.30 does not beat chance 0.50",
                lf_stats_dict("kw_video", 0, 0.1, 0.55, 9)),
               ("kw_sub", "redundant with kw_channel (0.91 overlap)", lf_stats_dict("kw_sub", 1, 0.2, 0.95, 18))]
    candidates = [{"name": lf.name, "kind": lf.kind, "label": lf.label, "summary": lf.summary(),
                   "source": lf.provenance.source, "kept": True, "reason": None, "stats": s}
                  for lf, s in zip(lfs, stats)]
    candidates += [{"name": n, "kind": "keywords", "label": "HAM", "summary": n, "source": "mined:ngram",
                    "kept": False, "reason": r, "stats": s} for n, r, s in dropped]
    (run_dir / "candidates.json").write_text(json.dumps(candidates), encoding="utf-8")
    metrics = {"cross_fitted_seeds": {
        "seed_accuracy": 0.875, "seed_accuracy_low": 0.739, "seed_accuracy_high": 0.945, "seed_macro_f1": 0.871,
        "seed_ece": 0.061, "seed_ece_uncalibrated": 0.142, "seed_covered_fraction": 0.8,
        "unlabeled_coverage": float(np.mean([r["covered"] for r in silver])), "n_seeds": n_seeds,
        "n_unlabeled": n_unlabeled, "n_candidates": len(candidates), "n_kept": len(lfs), "folds": 5,
        "label_model": "dawid_skene", "extra": {}}, "test": None, "llm": None}
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    (run_dir / "lfs.txt").write_text("(fixture)\n", encoding="utf-8")
    db = sqlite3.connect(str(run_dir / "run.sqlite"))
    db.execute("PRAGMA journal_mode=WAL")  # as RunStore writes it
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('run_id', ?), ('created', ?)", (json.dumps("fixture0run1"), json.dumps(str(CREATED))))
    db.commit()
    db.close()
    return run_dir
