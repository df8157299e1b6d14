"""The few-shot expert's embeddings: the encoder fine-tuned on the seeds, and honest stand-ins for cross-fitting.

The expert (fit/expert.py's logistic regression) reads these vectors instead of frozen MiniLM's when the run
fine-tunes (`PipelineConfig.expert = "finetuned"`, the default). Three fine-tunes, 1.5 times SetFit's own steps
(its pairs grow with the seeds; the group encoders get half the pair iterations), in bfloat16 mixed precision
where the CPU has it natively (`PipelineConfig.fewshot_precision`), about 30% less a step:

- the seeds are split into two groups along the cross-fitting folds (fold f -> group f % 2), and an encoder
  is fine-tuned on each group; a fold's held-out seeds are embedded, and its expert trained, by the encoder of
  the *other* group, which never saw them (five full fine-tunes would be the plain alternative);
- the final encoder is fine-tuned on every seed; it embeds the seeds (for the final head) and the unlabeled
  records, and is saved in the run directory (`expert/encoder/`), where `generate` loads it.

Held-out figures come from encoders fine-tuned on 40-60% of the seeds with half the pairs per seed, so they
run a little below what the final expert reaches (the calibrator learns from them: a little under-confident
rather than over). A group whose seeds hold a single class cannot be fine-tuned: its folds use the frozen
encoder (honest too: it saw nothing). Everything is cached under `expert/`, keyed by the seeds and options,
so refits within a run (every agent round) pay nothing, and copied to the shared cache
($LFAGENT_CACHE/experts/, the most recent few kept), so another run on the same seeds (another LLM, more
rounds) pays nothing either.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lfagent.data.embedders import FINETUNED_PREFIX
from lfagent.fit.fewshot import encode, fine_tune_encoder, save_encoder

EXPERT_DIR = "expert"  # in a run (or end-model) directory
ENCODER_DIR = "encoder"
VIEWS_FILE = "views.npz"
META_FILE = "views.json"
SHARED_DIR = "experts"  # in lfagent's shared cache directory
KEEP_SHARED = 6  # fine-tuned encoders kept there (about 90 MB each), most recently used first
VERSION = 3  # bump when the recipe changes: cached views are rebuilt (2: 128-token cap, 3: length-grouped batches)


@dataclass
class ExpertViews:
    name: str  # the final encoder's embedder name (finetuned-HASH); generate loads it from `model_dir`
    model_dir: Path
    seed_emb: np.ndarray  # seeds, final encoder
    unl_emb: np.ndarray  # unlabeled records, final encoder
    heldout: list[np.ndarray]  # per cross-fitting fold: every seed, by an encoder that never saw that fold

    def fold_emb(self, fold: int) -> np.ndarray:
        return self.heldout[fold]


def encoder_dir(run_dir: str | Path) -> Path:
    """Where a run directory keeps its fine-tuned expert encoder (generate and EndModel load it there)."""
    return Path(run_dir) / EXPERT_DIR / ENCODER_DIR


def groups_of(folds: list[np.ndarray], n: int) -> np.ndarray:
    """Encoder group of each seed: its fold's parity."""
    group = np.zeros(n, dtype=int)
    for f, rows in enumerate(folds):
        group[rows] = f % 2
    return group


def views_key(seed_texts: list[str], seed_y: np.ndarray, options: dict) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": VERSION, "options": options, "y": np.asarray(seed_y).tolist()},
                             sort_keys=True).encode())
    for text in seed_texts:
        digest.update(text.encode("utf-8", "replace") + b"\0")
    return digest.hexdigest()


def trainable(y: np.ndarray, multi_label: bool) -> bool:
    """SetFit's pairs need two classes (multi-label: two distinct label sets) among at least two seeds."""
    y = np.asarray(y)
    if len(y) < 2:
        return False
    return len({tuple(row) for row in y.tolist()}) > 1 if multi_label else len(np.unique(y)) > 1


def build_expert_views(seed_texts: list[str], seed_y: np.ndarray, unl_texts: list[str], *, multi_label: bool,
                       folds: list[np.ndarray], frozen_seed_emb: np.ndarray, out_dir: str | Path,
                       cache_path: str | Path | None, seed: int = 0, options: dict | None = None,
                       group_iterations: int | None = None, progress=None) -> ExpertViews | None:
    """Fine-tune (or read back) the encoders and embed seeds and records; None when the seeds hold one class.

    `options` go to fewshot.fine_tune_encoder (pair_iterations, max_steps, ...); `group_iterations`, when
    given, replaces pair_iterations for the two group encoders. `progress` is a lfagent.counting progress
    callback.
    """
    from lfagent.counting import counter, reporter
    from lfagent.data.embed import Embedder

    seed_y = np.asarray(seed_y)
    if not trainable(seed_y, multi_label):
        return None
    out_dir = Path(out_dir)
    options, group_options, key = _identity(seed_texts, seed_y, multi_label, folds, seed, options, group_iterations)
    name = FINETUNED_PREFIX + key[:12]
    group = groups_of(folds, len(seed_y))
    by_group = _cached_groups(out_dir, key) or _from_shared(key, out_dir)
    if by_group is None:
        by_group = {}
        steps = _steps(len(seed_y), group, seed_y, multi_label, options, group_options)
        with counter(progress, "fine-tuning the expert's encoder", steps, unit="steps") as count:
            report = {"on_step": count.advance}
            for g in (0, 1):
                rows = np.flatnonzero(group == g)
                if trainable(seed_y[rows], multi_label):
                    encoder = _fine_tune([seed_texts[i] for i in rows], seed_y[rows], multi_label, seed + 1 + g,
                                         {**group_options, **report})
                    by_group[g] = encode(encoder, seed_texts)
            final = _fine_tune(seed_texts, seed_y, multi_label, seed, {**options, **report})
            _save(final, out_dir, key, name, by_group)
        _to_shared(out_dir, key)
    heldout = []
    for f in range(len(folds)):
        other = 1 - f % 2
        heldout.append(by_group[other] if other in by_group else frozen_seed_emb)
    embedder = Embedder(cache_path, embedder=name, model_dir=out_dir / ENCODER_DIR)
    try:
        with counter(progress, f"embedding ({name})", len(seed_texts) + len(unl_texts)) as count:
            seed_emb = embedder.encode(list(seed_texts), progress=reporter(count))
            unl_emb = embedder.encode(list(unl_texts), progress=reporter(count))
    finally:
        embedder.close()
    return ExpertViews(name=name, model_dir=out_dir / ENCODER_DIR, seed_emb=seed_emb, unl_emb=unl_emb,
                       heldout=heldout)


def _identity(seed_texts, seed_y, multi_label, folds, seed, options, group_iterations):
    """(final options, group options, key): the key names the views in the run and in the shared cache."""
    options = dict(options or {})
    group_options = {**options, **({"pair_iterations": group_iterations} if group_iterations else {})}
    key = views_key(seed_texts, seed_y, {**options, "group": group_options, "folds": [f.tolist() for f in folds],
                                         "seed": seed, "multi_label": multi_label})
    return options, group_options, key


def planned_steps(seed_texts: list[str], seed_y: np.ndarray, *, multi_label: bool, folds: list[np.ndarray],
                  seed: int = 0, options: dict | None = None, group_iterations: int | None = None) -> tuple[int, bool]:
    """(optimiser steps the three fine-tunes would take, whether the shared cache already holds them): for a
    cost plan, without loading a model."""
    seed_y = np.asarray(seed_y)
    if not trainable(seed_y, multi_label):
        return 0, False
    options, group_options, key = _identity(seed_texts, seed_y, multi_label, folds, seed, options, group_iterations)
    steps = _steps(len(seed_y), groups_of(folds, len(seed_y)), seed_y, multi_label, options, group_options)
    return steps, _cached_groups(shared_dir(key), key) is not None


def _steps(n: int, group: np.ndarray, seed_y: np.ndarray, multi_label: bool, options: dict,
           group_options: dict) -> int:
    from lfagent.fit.fewshot import step_count

    return step_count(n, options) + sum(step_count(int((group == g).sum()), group_options) for g in (0, 1)
                                        if trainable(seed_y[group == g], multi_label))


def _fine_tune(texts, y, multi_label, seed, options):
    return fine_tune_encoder(list(texts), y, multi_label=multi_label, seed=seed, **options)


def _cached_groups(out_dir: Path, key: str) -> dict[int, np.ndarray] | None:
    """The group encoders' seed vectors, when `out_dir` holds views made from these seeds and options."""
    try:
        meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
        if meta.get("key") != key or not (out_dir / ENCODER_DIR / "modules.json").is_file():
            return None
        with np.load(out_dir / VIEWS_FILE) as data:
            return {int(g): data[f"group{g}"] for g in meta["groups"]}
    except (OSError, ValueError, KeyError):
        return None


def _save(encoder, out_dir: Path, key: str, name: str, by_group: dict[int, np.ndarray]) -> None:
    """Encoder first, metadata last: a run killed in between fine-tunes again rather than reading half."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / META_FILE).unlink(missing_ok=True)
    _put_encoder(out_dir, lambda tmp: save_encoder(encoder, tmp))
    (out_dir / VIEWS_FILE).unlink(missing_ok=True)  # may be a hard link into the shared cache
    np.savez(out_dir / VIEWS_FILE, **{f"group{g}": v for g, v in by_group.items()})
    (out_dir / META_FILE).write_text(json.dumps({"key": key, "name": name, "groups": sorted(by_group)}),
                                     encoding="utf-8")


def shared_dir(key: str) -> Path:
    from lfagent.data.embed import default_cache_dir

    return default_cache_dir() / SHARED_DIR / key[:32]


def _from_shared(key: str, out_dir: Path) -> dict[int, np.ndarray] | None:
    """Views another run made from the same seeds and options, copied into this run's directory."""
    source = shared_dir(key)
    if _cached_groups(source, key) is None:
        return None
    try:
        _copy_views(source, out_dir)
        source.touch()  # most recently used
    except OSError:
        return None
    return _cached_groups(out_dir, key)


def _to_shared(out_dir: Path, key: str) -> None:
    """Best effort: a cache that cannot be written costs the next run a fine-tune, nothing else."""
    target = shared_dir(key)
    try:
        _copy_views(out_dir, target)
        kept = sorted((p for p in target.parent.iterdir() if p.is_dir() and not p.name.endswith(".tmp")),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP_SHARED:]:
            _remove(old)
    except OSError:
        pass


def _copy_views(source: Path, target: Path) -> None:
    """Encoder and vectors first, views.json last (it is what marks a folder complete); hard links where the
    file system allows (the files are never rewritten in place)."""
    import os
    import shutil

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target.mkdir(parents=True, exist_ok=True)
    (target / META_FILE).unlink(missing_ok=True)
    _put_encoder(target, lambda tmp: shutil.copytree(source / ENCODER_DIR, tmp, copy_function=link_or_copy))
    (target / VIEWS_FILE).unlink(missing_ok=True)
    link_or_copy(source / VIEWS_FILE, target / VIEWS_FILE)
    shutil.copy2(source / META_FILE, target / META_FILE)


def _put_encoder(views_dir: Path, write) -> None:
    """`write(folder)` fills a folder beside the encoder's place, which then replaces the encoder: a reader
    never finds half of one."""
    tmp = views_dir / (ENCODER_DIR + ".tmp")
    _remove(tmp)
    write(tmp)
    _remove(views_dir / ENCODER_DIR)
    tmp.rename(views_dir / ENCODER_DIR)


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
