"""The end model: the encoder fine-tuned again on a run's silver labels, with a head trained on every row.

`lfagent train RUN_DIR --out MODEL_DIR` (the self-training step of the few-shot literature):

1. start from the run's fine-tuned expert encoder (else the bundled MiniLM);
2. fine-tune it with SetFit's contrastive pairs on the seeds plus, per class, the silver rows the run is
   surest of (`per_class`), for at most `steps` optimiser steps: pairs from a few hundred texts, so the cost
   stays that of one seed fine-tune however large the corpus;
3. fit the head (balanced logistic regression) on every silver row and every seed in the new space: each row
   with its decided class weighted by the run's confidence in it (seeds weigh 1); soft targets under balanced
   class weights collapse towards the prior (evals/results/end-model-all-rows/weighting.md).

MODEL_DIR holds model.json (a labeler with no LFs whose expert is this head) and expert/encoder/, so
`lfagent generate MODEL_DIR ...` and `EndModel.load(MODEL_DIR)` label new text with it. Its probabilities
are the head's, not recalibrated: the seeds it could be calibrated on are in its training set.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lfagent.errors import InputError
from lfagent.fit.expert import ExpertState, fit_expert

END_MODEL_STEPS = 250  # one SetFit fine-tune on 100 seeds: 2 x 20 x 100 pairs / batch 16
PER_CLASS = 32


class TrainSummary(BaseModel):
    model_dir: str
    rows: int  # silver rows the head learned from
    seeds: int
    contrastive_texts: int
    steps: int | None
    seconds: float
    start: str  # which encoder the fine-tune started from
    precision: str = "fp32"  # of the fine-tune (fit/fewshot.resolve_precision); the encoder computes in float32


def confident_rows(probs: np.ndarray, multi_label: bool, per_class: int) -> np.ndarray:
    """Row indices: per class, the `per_class` rows the silver labels are surest of (deduplicated)."""
    chosen: list[int] = []
    for c in range(probs.shape[1]):
        if multi_label:
            order = np.argsort(-probs[:, c], kind="stable")
        else:
            mine = np.flatnonzero(probs.argmax(axis=1) == c)
            order = mine[np.argsort(-probs[mine, c], kind="stable")]
        chosen.extend(order[:per_class].tolist())
    return np.asarray(sorted(set(chosen)), dtype=int)


def fit_weighted_head(emb: np.ndarray, probs: np.ndarray, multi_label: bool, seed: int,
                      c: float = 10.0) -> ExpertState:
    """The expert's balanced logistic regression on decided labels, each row weighted by its confidence."""
    if multi_label:
        return fit_expert(emb, (probs >= 0.5).astype(int), True, seed, c, sample_weight=np.maximum(probs, 1 - probs),
                          max_iter=2000)
    head = fit_expert(emb, probs.argmax(axis=1), False, seed, c, sample_weight=probs.max(axis=1), max_iter=2000)
    if head is None:
        raise InputError("the silver labels hold a single class: there is nothing for an end model to learn")
    return head


def read_silver_probs(run_dir: Path, ids: list, class_names: list[str]) -> np.ndarray:
    """silver.jsonl's probabilities in the order of `ids` (the unlabeled file's records)."""
    path = run_dir / "silver.jsonl"
    if not path.is_file():
        raise InputError("no silver labels here; run `lfagent run TASK.yaml --out RUN_DIR` first", path=path)
    from lfagent.data.readers import iter_rows

    by_id = {}
    for line_no, row in iter_rows(path, "jsonl"):  # a line that is not JSON: an InputError naming it
        try:
            by_id[str(row["id"])] = [float(row["probs"][c]) for c in class_names]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a silver row ({exc.__class__.__name__}: {exc})", path=path, line=line_no) from None
    missing = [str(i) for i in ids if str(i) not in by_id]
    if missing:
        raise InputError(f"{len(missing)} unlabeled records have no silver row (first: {missing[0]!r}); was the "
                         f"unlabeled file changed after the run?", path=path)
    return np.asarray([by_id[str(i)] for i in ids], dtype=float)


def silver_targets(run_dir: Path, model) -> tuple:
    """(seeds, unlabeled records, seed targets, silver probabilities): what an end model learns from.
    Seed targets are one-hot (single-label) or the label sets (multi-label); silver rows follow the
    unlabeled file's order."""
    from lfagent.data.dataset import load_seeds, load_unlabeled

    labeler, task = model.labeler, model.task_spec()
    unlabeled, seeds = load_unlabeled(task), load_seeds(task)
    probs = read_silver_probs(run_dir, list(unlabeled.ids), labeler.class_names)
    seed_probs = (np.asarray(seeds.y, dtype=float) if labeler.multi_label
                  else np.eye(labeler.k)[np.asarray(seeds.y, dtype=int)])
    return seeds, unlabeled, seed_probs, probs


def train_end_model(run_dir: str | Path, out_dir: str | Path, *, steps: int | None = END_MODEL_STEPS,
                    per_class: int = PER_CLASS, seed: int = 0, overwrite: bool = False, precision: str | None = None,
                    progress=None) -> TrainSummary:
    """Fine-tune the run's encoder on its silver labels and write MODEL_DIR (see the module docstring).

    `precision`: auto, fp32 or bf16, as for the run's expert (default: $LFAGENT_PRECISION, else auto).
    """
    from lfagent.counting import counter
    from lfagent.data.embed import model_path
    from lfagent.data.embedders import FINETUNED_PREFIX
    from lfagent.fit.fewshot import encode, fine_tune_encoder, resolve_precision, save_encoder
    from lfagent.fit.fewshot_views import encoder_dir
    from lfagent.fit.fold_fit import default_precision
    from lfagent.fit.labeler import Labeler
    from lfagent.rundir.files import RunModel, load_model, write_json_atomic

    started = time.perf_counter()
    precision = resolve_precision(precision or default_precision())
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if (out_dir / "model.json").exists() and not overwrite:
        raise InputError("an end model is already here; pass --overwrite to replace it", path=out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise InputError("--out must be a new folder, not the run directory", path=out_dir)
    model = load_model(run_dir)
    labeler = model.labeler
    seeds, unlabeled, seed_probs, probs = silver_targets(run_dir, model)
    start = encoder_dir(run_dir) if labeler.expert_embedder else model_path()
    if labeler.expert_embedder and not (start / "modules.json").is_file():
        raise InputError("the run's fine-tuned encoder is missing (expert/encoder/)", path=start)
    rows = confident_rows(probs, labeler.multi_label, per_class)
    texts = list(seeds.texts) + [unlabeled.texts[i] for i in rows]
    targets = np.vstack([seed_probs, probs[rows]])
    y = (targets >= 0.5).astype(int) if labeler.multi_label else targets.argmax(axis=1)
    with counter(progress, "fine-tuning on the silver labels", 1, unit="fine-tunes") as count:
        encoder = fine_tune_encoder(texts, y, multi_label=labeler.multi_label, seed=seed, base_model=start,
                                    max_steps=steps, precision=precision)
        count.advance()
    every = list(seeds.texts) + list(unlabeled.texts)
    with counter(progress, "embedding for the head", len(every)) as count:
        emb = encode(encoder, every)
        count.advance(len(every))
    head = fit_weighted_head(emb, np.vstack([seed_probs, probs]), labeler.multi_label, seed)
    name = FINETUNED_PREFIX + hashlib.sha256(f"{model.run_id}|{steps}|{per_class}|{seed}|end".encode()).hexdigest()[:12]
    encoder_dir(out_dir).parent.mkdir(parents=True, exist_ok=True)
    save_encoder(encoder, encoder_dir(out_dir))
    end = Labeler(class_names=labeler.class_names, multi_label=labeler.multi_label, lfs=[], label_model=None,
                  prior=labeler.prior, expert=head, join="none", calibrator=None, text_field=labeler.text_field,
                  embedder=None, expert_embedder=name)
    write_json_atomic(out_dir / "model.json", json.loads(RunModel(
        run_id=f"{model.run_id}-end", task=model.task, labeler=end, lf_set_hash="end-model",
        uses_embeddings=True).model_dump_json()))
    summary = TrainSummary(model_dir=str(out_dir), rows=len(unlabeled), seeds=len(seeds),
                           contrastive_texts=len(texts), steps=steps, seconds=time.perf_counter() - started,
                           start="run's fine-tuned expert" if labeler.expert_embedder else "bundled MiniLM",
                           precision=precision)
    write_json_atomic(out_dir / "train.json", summary.model_dump())
    return summary


class EndModel:
    """A trained end model (or any run directory) as a text classifier for Python code.

        model = EndModel.load("models/yt")
        model.predict_proba(["check out my channel"])   # (1, k) probabilities
        model.predict(["check out my channel"])         # class names (multi-label: lists of them)
    """

    def __init__(self, model_dir: str | Path):
        from lfagent.rundir.files import load_model

        self.model_dir = Path(model_dir)
        self.model = load_model(self.model_dir)
        self.labeler = self.model.labeler
        self._embedders: tuple[object, object] | None = None  # generate.job.run_embedders, built once
        self._pool = None

    @classmethod
    def load(cls, model_dir: str | Path) -> "EndModel":
        return cls(model_dir)

    @property
    def class_names(self) -> list[str]:
        return self.labeler.class_names

    def _label(self, texts: list[str]):
        labeler = self.labeler
        if self._embedders is None:
            from lfagent.data.embed import default_cache_dir
            from lfagent.fit.fewshot_views import encoder_dir
            from lfagent.generate.job import run_embedders

            self._embedders = run_embedders(self.model, str(default_cache_dir() / "embeddings.sqlite"),
                                            str(encoder_dir(self.model_dir)))
        embed, embed_expert = (None if e is None else e.encode for e in self._embedders)
        rows = [{labeler.text_field: text} for text in texts]
        if labeler.code_columns and self._pool is None:
            from lfagent.sandbox import SandboxPool

            self._pool = SandboxPool(workers=1)  # a run's code LFs run sandboxed here too
        return labeler.label(list(texts), rows, embed=embed, embed_expert=embed_expert, pool=self._pool)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self._label(list(texts)).probs

    def predict(self, texts: list[str]) -> list:
        return self._label(list(texts)).labels
