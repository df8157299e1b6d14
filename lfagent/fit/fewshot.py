"""The few-shot expert: the sentence encoder fine-tuned on the seeds (SetFit's recipe), then a linear head.

SetFit's recipe: pairs drawn from the seeds (same class -> cosine target 1, different -> 0), CosineSimilarityLoss,
1 epoch, 20 pair iterations (2 x 20 x n pairs), batch 16, then logistic regression on the fine-tuned
embeddings. The `setfit` library runs the fine-tuning (install the `embed` extra); the head is ours, so that

- single-label: one balanced-class logistic regression; its output is a likelihood with a flat class prior,
  like `pipeline.fit_fallback`, so it joins the label model as an independent expert (`combine_experts`);
- multi-label: one balanced binary head per class (a class with constant labels gets that constant);
- it is stored as JSON weights beside the encoder in sentence-transformers' format: no pickle.

Honest figures for the seeds come from `cross_fitted_proba`: each seed is scored by an expert whose
fine-tune and head never saw it.

    expert = FewShotExpert(k=3, seed=0).fit(texts, y)
    probs = expert.predict_proba(["new text"])          # (1, 3)
    expert.save("run/fewshot"); FewShotExpert.load("run/fewshot")
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from lfagent.errors import InputError, LFAgentError

HEAD_FILE = "head.json"
ENCODER_DIR = "encoder"
INSTALL_HINT = "pip install 'lfagent[embed]' (or: pip install setfit==1.2.0)"


def _quiet_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("WANDB_DISABLED", "true")


def encode(encoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings from a SentenceTransformer, on capped threads."""
    with capped_threads():
        emb = encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)


def save_encoder(encoder, folder: str | Path) -> None:
    """The encoder in sentence-transformers' format, without transformers' per-shard progress bar."""
    from lfagent.data.embedders import no_transformers_bars

    with no_transformers_bars():
        encoder.save(str(folder))


def _quiet_libraries() -> None:
    """setfit logs "***** Running training *****" at INFO and datasets draws a bar per map: not for users."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    for name in ("setfit", "sentence_transformers", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def capped_threads(n: int | None = None):
    """torch's intra-op pool and BLAS capped at `n` (default: 2 or fewer cores); restored afterwards.

    threadpoolctl does not reach torch's own pool, so both are set.
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = n or max(1, min(2, os.cpu_count() or 1))
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def load_encoder(path: str | Path | None = None):
    """A SentenceTransformer from `path` (default: the bundled all-MiniLM-L6-v2), never the hub."""
    _quiet_env()
    from lfagent.data.embedders import load_sentence_transformer

    if path is None:
        from lfagent.data.embed import model_path

        path = model_path()
    return load_sentence_transformer(path)


def _check_labels(texts: list[str], y, multi_label: bool) -> np.ndarray:
    y = np.asarray(y)
    if len(texts) != len(y):
        raise InputError(f"few-shot expert: {len(texts)} texts but {len(y)} labels")
    if len(texts) < 2:
        raise InputError(f"few-shot expert: needs at least 2 labelled texts, got {len(texts)}")
    if multi_label and y.ndim != 2:
        raise InputError(f"few-shot expert: multi-label y must be (n, k) 0/1, got shape {y.shape}")
    if not multi_label and y.ndim != 1:
        raise InputError(f"few-shot expert: single-label y must be (n,) class indices, got shape {y.shape}")
    return y.astype(int)


def fine_tune_encoder(texts: list[str], y, *, multi_label: bool, seed: int, pair_iterations: int = 20,
                      epochs: int = 1, batch_size: int = 16, max_steps: int | None = None,
                      base_model: str | Path | None = None, max_seq_length: int = 128, on_step=None,
                      loss: str = "cosine", learning_rate: float | None = None, precision: str = "fp32"):
    """Fine-tune the encoder on labelled texts with SetFit's contrastive pairs; returns a SentenceTransformer.

    Deterministic for a seed (setfit seeds python, numpy and torch; its pair order is fixed). `max_steps`
    caps the optimiser steps (and so the pairs drawn): tests use 5. `on_step()` is called after each step
    (progress bars). `loss`: "cosine" (SetFit's pairs) or a batch loss over every pair of texts in a batch
    ("triplet": BatchAllTripletLoss; single-label only, `epochs` passes over the texts); `learning_rate` replaces
    setfit's 2e-5 for the encoder. `precision`: "fp32", or "bf16" (mixed precision: the transformer's layers in
    bfloat16; weights, optimiser, pooling and loss in float32; see `resolve_precision`). The returned encoder computes in float32.
    """
    _quiet_env()
    y = _check_labels(list(texts), y, multi_label)
    if precision not in PRECISIONS:
        raise InputError(f"few-shot expert: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
    except ImportError as exc:
        raise LFAgentError(f"the few-shot expert needs setfit ({exc}); run `{INSTALL_HINT}`") from None
    extra = {"body_learning_rate": float(learning_rate)} if learning_rate else {}
    if loss != "cosine":  # checked before the model loads
        extra["loss"] = _batch_loss(loss, multi_label)
    body = load_encoder(base_model)
    # Batches pad to their longest text, and random pairs put a long one in nearly every batch, so the cap
    # bounds what a step costs on comment-length texts; most comments are far shorter than 128 tokens. The
    # saved encoder keeps the cap, so encoding is cheaper too.
    body.max_seq_length = min(body.max_seq_length, int(max_seq_length))
    labels = [list(map(int, row)) for row in y] if multi_label else [int(v) for v in y]
    model = SetFitModel(model_body=body, multi_target_strategy="one-vs-rest" if multi_label else None)
    _quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="lfagent-fewshot-") as tmp, capped_threads(), warnings.catch_warnings(), \
            _trainer_device(str(body.device)):
        warnings.simplefilter("ignore")
        args = TrainingArguments(output_dir=tmp, batch_size=batch_size, num_epochs=epochs, **extra,
                                 num_iterations=pair_iterations, seed=seed,
                                 max_steps=_step_cap(max_steps, len(texts), pair_iterations, batch_size, epochs,
                                                     loss),
                                 save_strategy="no",
                                 report_to="none", show_progress_bar=False, logging_strategy="no",
                                 logging_first_step=False)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": list(texts), "label": labels}))
        for callback in (ProgressCallback, PrinterCallback):  # they print each log line to stdout
            trainer.st_trainer.remove_callback(callback)
        if loss == "cosine":  # the sampler batches pairs; a batch loss's rows are single texts, left to setfit
            trainer.st_trainer.args.batch_sampler = length_grouped_batches
        if on_step is not None:
            trainer.st_trainer.add_callback(_StepCallback(on_step))
        with _autocast(precision, body):
            trainer.train_embeddings(list(texts), labels)
    body.eval()
    return body


PRECISIONS = ("fp32", "bf16")


def resolve_precision(precision: str, flags: set[str] | None = None) -> str:
    """"auto" -> "bf16" where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), else "fp32".

    `flags`: the CPU's feature flags (default: read from /proc/cpuinfo, without importing torch, since the
    cost plan calls this). Where bfloat16 is only emulated it is slower than float32, so it is never the
    automatic choice there.
    """
    if precision != "auto":
        if precision not in PRECISIONS:
            raise InputError(f"few-shot expert: precision must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
        return precision
    flags = cpu_flags() if flags is None else flags
    return "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "fp32"


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@contextlib.contextmanager
def _trainer_device(device: str):
    """The trainer fine-tunes where the encoder was loaded (data/device.py). Left alone, transformers' trainer
    moves it to any GPU it finds (Apple's too), and setfit builds the trainer's arguments itself, so a CPU
    choice is passed on as `use_cpu` to the arguments setfit builds, for this fine-tune only."""
    if not device.startswith("cpu"):
        yield
        return
    from unittest import mock

    import setfit.trainer as setfit_trainer

    plain = setfit_trainer.SentenceTransformerTrainingArguments
    with mock.patch.object(setfit_trainer, "SentenceTransformerTrainingArguments",
                           functools.partial(plain, use_cpu=True)):
        yield


@contextlib.contextmanager
def _autocast(precision: str, body):
    """bfloat16 autocast for the transformer's layers only: pooling, normalisation and the loss stay float32.

    Autocast over the whole step (the cosine loss in bfloat16 too) cost 0.09 accuracy on a trec tuning draw;
    this way the encoder scored what float32 training gives (evals/results/bf16/NOTES.md)."""
    if precision != "bf16":
        yield
        return
    import torch

    transformer = body[0]
    plain = transformer.forward

    def forward(features, *args, **kwargs):
        with torch.autocast(features["input_ids"].device.type, dtype=torch.bfloat16):
            out = plain(features, *args, **kwargs)
        return {key: value.float() if torch.is_tensor(value) and value.is_floating_point() else value
                for key, value in out.items()}

    transformer.forward = forward
    try:
        yield
    finally:
        del transformer.forward


def _batch_loss(name: str, multi_label: bool):
    """A loss over every pair in a batch of labelled texts (setfit's batch-loss path): single-label only."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import losses

    # setfit's SupConLoss is not offered: an anchor whose class has no other text in its batch gives NaN
    # (trec's rare classes), and the encoder's vectors with it.
    known = {"triplet": losses.BatchAllTripletLoss}
    if name not in known:
        raise InputError(f"few-shot expert: unknown loss {name!r} (known: cosine, {', '.join(known)})")
    if multi_label:
        raise InputError(f"few-shot expert: the {name} loss needs one class per text; multi-label tasks use cosine")
    return known[name]


def _StepCallback(on_step):
    from transformers import TrainerCallback

    class StepCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            on_step()

    return StepCallback()


def step_count(n: int, options: dict) -> int:
    """Optimiser steps `fine_tune_encoder(**options)` takes on n texts (its defaults where options are silent)."""
    iterations, batch, epochs = (options.get(name) or default for name, default in
                                 (("pair_iterations", 20), ("batch_size", 16), ("epochs", 1)))
    natural = _recipe_steps(n, iterations, batch, epochs, options.get("loss") or "cosine")
    cap = options.get("max_steps")
    return natural if cap is None else min(int(cap), natural)


def _recipe_steps(n: int, pair_iterations: int, batch_size: int, epochs: int, loss: str = "cosine") -> int:
    """SetFit's own length: 2 x pair_iterations x n pairs, batch_size a step, per epoch; a batch loss takes
    batch_size texts a step."""
    per_epoch = 2 * pair_iterations * n if loss == "cosine" else n
    return -(-per_epoch // batch_size) * epochs


def _step_cap(max_steps: int | None, n: int, pair_iterations: int, batch_size: int, epochs: int,
              loss: str = "cosine") -> int:
    """transformers' max_steps, or -1 for the recipe's own length. Passed as is, a cap above that length
    would not cap: the trainer would loop over the pairs again until it reached it."""
    natural = _recipe_steps(n, pair_iterations, batch_size, epochs, loss)
    return -1 if max_steps is None or int(max_steps) >= natural else int(max_steps)


def length_grouped_batches(dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                           seed: int = 0):
    """sentence-transformers batch sampler: the same shuffled pairs, batched with pairs of similar length.

    A batch pads to its longest text, so random batches of comment-length texts pay for the longest one in
    nearly every step. CosineSimilarityLoss is per pair, so which pairs share a batch does not change what is
    learned, only the padding.
    """
    try:
        from sentence_transformers.base.sampler import DefaultBatchSampler
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.sampler import DefaultBatchSampler

    class LengthGrouped(DefaultBatchSampler):
        def __iter__(self):
            yield from grouped_batches(lengths, self.batch_size, self.drop_last, seed + getattr(self, "epoch", 0))

        def __len__(self):
            n = len(lengths)
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    lengths = [max(len(a), len(b)) for a, b in zip(dataset["sentence_1"], dataset["sentence_2"])]
    return LengthGrouped(range(len(lengths)), batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)


def grouped_batches(lengths: list[int], batch_size: int, drop_last: bool, seed: int, window: int = 64) -> list:
    """Shuffle, sort by length within windows of `window` batches, batch, shuffle the batches (as HF's
    LengthGroupedSampler): every index once per epoch."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span].tolist(), key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches))]


# ---- the head: logistic regression stored as plain weights --------------------------------------------

def fit_head(emb: np.ndarray, y: np.ndarray, *, multi_label: bool, k: int, seed: int, C: float = 1.0) -> dict:
    """Balanced-class logistic regression as JSON-ready weights (see `head_proba`)."""
    if multi_label:
        return {"multi_label": True, "k": k, "heads": [_binary_head(emb, y[:, c], seed, C) for c in range(k)]}
    present = np.unique(y)
    if len(present) < 2:  # one class seen: it gets all the mass
        return {"multi_label": False, "k": k, "classes": present.tolist(), "coef": None, "intercept": None}
    model = _logreg(seed, C).fit(emb, y)
    return {"multi_label": False, "k": k, "classes": model.classes_.tolist(), "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist()}


def _binary_head(emb, column, seed, C) -> dict:
    if column.min() == column.max():
        return {"constant": float(column[0])}
    model = _logreg(seed, C).fit(emb, column)
    return {"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def _logreg(seed: int, C: float):
    from sklearn.linear_model import LogisticRegression

    # Balanced weights: the head scores p(x | y) up to a constant, a likelihood with a flat prior.
    return LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)


def head_proba(head: dict, emb: np.ndarray) -> np.ndarray:
    """(n, k) probabilities from `fit_head`'s weights; the same numbers sklearn's predict_proba gives."""
    n, k = len(emb), head["k"]
    emb = emb.astype(np.float64)
    if head["multi_label"]:
        cols = [np.full(n, h["constant"]) if "constant" in h else _sigmoid(emb @ np.asarray(h["coef"]) + h["intercept"])
                for h in head["heads"]]
        return np.column_stack(cols)
    out = np.zeros((n, k))
    classes = head["classes"]
    if head["coef"] is None:
        out[:, classes] = 1.0 if classes else 1.0 / k
        return out
    logits = emb @ np.asarray(head["coef"]).T + np.asarray(head["intercept"])
    if len(classes) == 2:  # sklearn's binary model has one row of weights: p(classes[1])
        p1 = _sigmoid(logits[:, 0])
        out[:, classes[0]], out[:, classes[1]] = 1 - p1, p1
        return out
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    out[:, classes] = probs / probs.sum(axis=1, keepdims=True)
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# ---- the expert ------------------------------------------------------------------------------------------

class FewShotExpert:
    """Fine-tuned encoder + balanced logistic-regression head. `k` = number of classes."""

    def __init__(self, *, k: int, multi_label: bool = False, seed: int = 0, C: float = 1.0,
                 pair_iterations: int = 20, epochs: int = 1, batch_size: int = 16, max_steps: int | None = None,
                 base_model: str | Path | None = None):
        if k < 2:
            raise InputError(f"few-shot expert: k must be at least 2 classes, got {k}")
        self.k, self.multi_label, self.seed, self.C = k, multi_label, seed, C
        self.train_options = {"pair_iterations": pair_iterations, "epochs": epochs, "batch_size": batch_size,
                              "max_steps": max_steps}
        self.base_model = base_model
        self.encoder = None
        self.head: dict | None = None

    def fit(self, texts: list[str], y) -> "FewShotExpert":
        texts = list(texts)
        y = _check_labels(texts, y, self.multi_label)
        if not self.multi_label and (y.min() < 0 or y.max() >= self.k):
            raise InputError(f"few-shot expert: labels must be class indices in [0, {self.k}), got {y.min()}..{y.max()}")
        self.encoder = fine_tune_encoder(texts, y, multi_label=self.multi_label, seed=self.seed,
                                         base_model=self.base_model, **self.train_options)
        with capped_threads():
            self.head = fit_head(self.encode(texts), y, multi_label=self.multi_label, k=self.k, seed=self.seed,
                                 C=self.C)
        return self

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 embeddings from the fine-tuned encoder."""
        if self.encoder is None:
            raise LFAgentError("few-shot expert: call fit() (or load()) first")
        return encode(self.encoder, texts, batch_size)

    def predict_proba(self, texts_or_emb) -> np.ndarray:
        """(n, k) probabilities for texts, or for embeddings this expert's `encode` gave."""
        self._check_fitted()
        emb = texts_or_emb if isinstance(texts_or_emb, np.ndarray) else self.encode(list(texts_or_emb))
        if emb.ndim != 2:
            raise InputError(f"few-shot expert: embeddings must be (n, dim), got shape {emb.shape}")
        return head_proba(self.head, emb)

    def save(self, folder: str | Path) -> Path:
        """encoder/ (sentence-transformers format) + head.json (weights and options; no pickle)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_encoder(self.encoder, folder / ENCODER_DIR)
        meta = {"k": self.k, "multi_label": self.multi_label, "seed": self.seed, "C": self.C,
                "train_options": self.train_options, "head": self.head}
        (folder / HEAD_FILE).write_text(json.dumps(meta), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "FewShotExpert":
        folder = Path(folder)
        if not (folder / HEAD_FILE).is_file() or not (folder / ENCODER_DIR).is_dir():
            raise InputError(f"{folder}: not a saved few-shot expert (needs {HEAD_FILE} and {ENCODER_DIR}/)")
        meta = json.loads((folder / HEAD_FILE).read_text(encoding="utf-8"))
        expert = cls(k=meta["k"], multi_label=meta["multi_label"], seed=meta["seed"], C=meta["C"],
                     **meta["train_options"])
        expert.encoder = load_encoder(folder / ENCODER_DIR)
        expert.head = meta["head"]
        return expert

    def _check_fitted(self) -> None:
        if self.encoder is None or self.head is None:
            raise LFAgentError("few-shot expert: call fit() (or load()) first")


# ---- honest figures for the seeds ------------------------------------------------------------------------

def fold_ids(y, folds: int, seed: int) -> np.ndarray:
    """Fold of each row, stratified by class (single-label) so every fold's training part sees each class."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    key = y if y.ndim == 1 else np.zeros(len(y), int)
    out = np.empty(len(y), int)
    offset = 0
    for value in np.unique(key):
        rows = rng.permutation(np.flatnonzero(key == value))
        out[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)  # spread small classes over different folds
    return out


def cross_fitted_proba(texts: list[str], y, *, k: int, multi_label: bool = False, folds: int = 2, seed: int = 0,
                       **expert_options) -> np.ndarray:
    """(n, k) probabilities for the labelled texts, each row from an expert fitted without it.

    `folds=2` costs two fine-tunes on half the seeds each (about one full fine-tune); the final expert
    is fitted on all seeds separately. Its held-out figure runs a little below the full expert's.
    """
    texts = list(texts)
    y = _check_labels(texts, y, multi_label)
    if folds < 2:
        raise InputError(f"cross_fitted_proba: folds must be at least 2, got {folds}")
    fold = fold_ids(y, folds, seed)
    out = np.zeros((len(texts), k))
    for f in range(folds):
        train, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        expert = FewShotExpert(k=k, multi_label=multi_label, seed=seed + f, **expert_options)
        expert.fit([texts[i] for i in train], y[train])
        out[held] = expert.predict_proba([texts[i] for i in held])
    return out
