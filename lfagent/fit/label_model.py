"""`LabelModel`: Snorkel-compatible front door over majority vote, Dawid-Skene EM and Snorkel's estimator."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from threadpoolctl import threadpool_limits

from lfagent.fit.dawid_skene import DawidSkeneFit, KnownRows, dawid_skene_proba, fit_dawid_skene
from lfagent.fit.label_matrix import (
    LabelMatrixError, check_cardinality, check_class_prior, check_label_matrix, check_labels,
)
from lfagent.fit.majority import majority_vote_proba
from lfagent.fit.metal import MetalConfig, MetalFit, fit_metal, metal_conditional_probs, metal_proba
from lfagent.fit.statistics import Votes

Method = Literal["auto", "majority", "dawid_skene", "metal"]
METHODS = ("auto", "majority", "dawid_skene", "metal")
STATE_FORMAT = "lfagent.label_model/1"
# Snorkel training options: these steer method "metal" (as in Snorkel) ...
_METAL_OPTIONS = {"n_epochs", "lr", "l2", "prec_init", "mu_eps"}
# ... and these are accepted and ignored so Snorkel call sites work unchanged.
_SNORKEL_TRAIN_OPTIONS = _METAL_OPTIONS | {"optimizer", "optimizer_config", "lr_scheduler",
                                           "lr_scheduler_config", "log_freq", "progress_bar"}


class DevSelection(BaseModel):
    """How `method="auto"` chose: cross-fitted dev accuracy and log-loss of each candidate."""

    model_config = ConfigDict(extra="forbid")
    n_dev: int
    n_folds: int
    accuracy: dict[str, float]
    log_loss: dict[str, float]
    chosen: str


class LabelModelState(BaseModel):
    """JSON-serialisable state of a fitted `LabelModel`."""

    model_config = ConfigDict(extra="forbid")
    format: str = STATE_FORMAT
    cardinality: int
    method: str
    chosen_method: str
    n_lfs: int
    class_prior: list[float]
    confusion: list[list[list[float]]] | None = None
    mu: list[list[float]] | None = None
    smoothing: float
    max_iter: int
    n_folds: int
    seed: int
    log_likelihood: float | None = None
    n_iter: int | None = None
    selection: DevSelection | None = None


def _prior_from_labels(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k).astype(float) + 1.0  # Laplace: no class gets zero prior
    return counts / counts.sum()


def _with_prior_on_uncovered(probs: np.ndarray, L: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Rows no LF voted on carry no evidence we trust (abstains correlate): give them the prior."""
    uncovered = ~(L >= 0).any(axis=1)
    probs = probs.copy()
    probs[uncovered] = prior
    return probs


def _fold_ids(n: int, n_folds: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % n_folds
    return folds


def _log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def _metal_config(options: dict) -> MetalConfig:
    """The Snorkel training options that steer method "metal", checked."""
    chosen = {key: options[key] for key in _METAL_OPTIONS if options.get(key) is not None}
    if "prec_init" in chosen:
        prec = np.asarray(chosen["prec_init"], dtype=float)
        if prec.ndim > 1 or not np.all((prec > 0) & (prec <= 1)):
            raise LabelMatrixError(f"prec_init must be one value or one per LF, in (0, 1], got {chosen['prec_init']!r}")
        chosen["prec_init"] = float(prec) if prec.ndim == 0 else tuple(prec.tolist())
    config = MetalConfig(**chosen)
    if int(config.n_epochs) != config.n_epochs or config.n_epochs < 1 or config.lr <= 0 or config.l2 < 0:
        raise LabelMatrixError("n_epochs must be an int >= 1, lr > 0 and l2 >= 0")
    if config.mu_eps is not None and not 0 <= config.mu_eps < 0.5:
        raise LabelMatrixError(f"mu_eps must be in [0, 0.5), got {config.mu_eps!r}")
    return config


class LabelModel:
    """Combine labeling-function votes into class probabilities.

    >>> lm = LabelModel(cardinality=2)
    >>> lm.fit(np.array([[0, 0, -1], [1, 1, 1], [0, -1, 0], [1, -1, 1]]), seed=0).predict([[1, 1, -1]])
    array([1])

    method: "metal" (Snorkel 0.10's estimator, reproduced: same seed, same probabilities),
    "dawid_skene" (EM over k x (k+1) confusion tables), "majority" (soft majority vote), or
    "auto": with dev labels pick the one with the best cross-fitted dev accuracy, else "metal"
    (benchmarks/results/label_model.md says why). Snorkel's n_epochs, lr, l2, prec_init and
    mu_eps passed to `fit` steer "metal" (default 500 epochs); other Snorkel options are ignored.
    """

    def __init__(self, cardinality: int = 2, method: Method = "auto", *, smoothing: float = 2.0,
                 max_iter: int = 300, n_folds: int = 5, verbose: bool = False):
        if method not in METHODS:
            raise LabelMatrixError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
        if smoothing < 0 or max_iter < 1 or n_folds < 2:
            raise LabelMatrixError("smoothing must be >= 0, max_iter >= 1 and n_folds >= 2")
        self.cardinality = check_cardinality(cardinality)
        self.method = method
        self.smoothing = float(smoothing)
        self.max_iter = int(max_iter)
        self.n_folds = int(n_folds)
        self.verbose = verbose  # accepted for Snorkel compatibility; this class never prints
        self._em_options: dict = {}  # fit's `known` and `unasked`, for Dawid-Skene
        self._reset()

    def _reset(self) -> None:
        self.chosen_method_: str | None = None
        self.class_prior_: np.ndarray | None = None
        self.n_lfs_: int | None = None
        self.seed_: int = 0
        self.ds_fit_: DawidSkeneFit | None = None
        self.metal_fit_: MetalFit | None = None
        self.selection_: DevSelection | None = None

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, L, seed: int = 0, *, class_balance=None, L_dev=None, y_dev=None, Y_dev=None,
            known: KnownRows | None = None, unasked: tuple[int, ...] = (), **snorkel_options) -> "LabelModel":
        """Fit on the label matrix `L` (n x m, -1 abstain). Returns self.

        class_balance fixes the class prior. y_dev (with L_dev) drives method="auto"; y_dev alone
        (or Snorkel's Y_dev) only sets the class prior, as in Snorkel. `known` and `unasked` steer
        Dawid-Skene's fit only (fit/dawid_skene.py: a source that labels some records and was not asked about
        the rest).
        """
        unknown = set(snorkel_options) - _SNORKEL_TRAIN_OPTIONS
        if unknown:
            raise TypeError(f"LabelModel.fit() got unexpected keyword arguments {sorted(unknown)}")
        metal_config = _metal_config(snorkel_options)
        self._em_options = {"known": known, "unasked": tuple(int(j) for j in unasked)}
        with threadpool_limits(1):  # small dense algebra: a second BLAS thread only stalls it
            return self._fit(L, seed, class_balance, L_dev, Y_dev if y_dev is None else y_dev, metal_config)

    def _fit(self, L, seed, class_balance, L_dev, y_dev, metal_config: MetalConfig) -> "LabelModel":
        k = self.cardinality
        L = check_label_matrix(L, k)
        self._reset()
        self.n_lfs_, self.seed_ = L.shape[1], int(seed)
        prior = None if class_balance is None else check_class_prior(class_balance, k)
        dev = self._check_dev(L, L_dev, y_dev)
        if prior is None and y_dev is not None and dev is None:
            prior = _prior_from_labels(check_labels(y_dev, k, name="y_dev"), k)
        # encoded once for every fit below; dev rows' votes are unlabelled data too
        votes = None if self.method == "majority" else self._votes(L, dev)
        method, fits = self.method, {}
        if method == "auto":
            # no dev labels: Snorkel's estimator, so we match Snorkel on any matrix (see the benchmark)
            method = "metal" if dev is None else self._select_on_dev(votes, dev, prior, metal_config, fits)
        self.chosen_method_ = method
        if method == "dawid_skene":
            self.ds_fit_ = fits.get("dawid_skene") or self._fit_dawid_skene(votes, prior)
            self.class_prior_ = self.ds_fit_.class_prior
        elif method == "metal":
            self.metal_fit_ = fits.get("metal") or self._fit_metal(votes, prior, metal_config)
            self.class_prior_ = self.metal_fit_.class_prior
        else:
            fallback = np.full(k, 1.0 / k) if dev is None else _prior_from_labels(dev[1], k)
            self.class_prior_ = prior if prior is not None else fallback
        return self

    def _votes(self, L, dev) -> Votes:
        """The fit's rows, L then the dev rows, encoded once (no stacked copy of L)."""
        votes = Votes.from_matrix(L, self.cardinality)
        return votes if dev is None else votes.stack(Votes.from_matrix(dev[0], self.cardinality))

    def _fit_dawid_skene(self, votes: Votes, prior) -> DawidSkeneFit:
        return fit_dawid_skene(votes, self.cardinality, class_prior=prior, smoothing=self.smoothing,
                               max_iter=self.max_iter, seed=self.seed_, **self._em_options)

    def _fit_metal(self, votes: Votes, prior, config: MetalConfig) -> MetalFit:
        """Snorkel's estimator; its prior is fixed: class_balance / Y_dev if given, else uniform."""
        k = self.cardinality
        if np.ndim(config.prec_init) == 1 and len(config.prec_init) != votes.n_lfs:
            raise LabelMatrixError(f"prec_init has {len(config.prec_init)} values for {votes.n_lfs} LFs")
        fixed_prior = prior if prior is not None else np.full(k, 1.0 / k)
        return fit_metal(votes, k, fixed_prior, seed=self.seed_, config=config)

    def _check_dev(self, L, L_dev, y_dev):
        if L_dev is None:
            return None
        L_dev = check_label_matrix(L_dev, self.cardinality, n_lfs=L.shape[1], name="L_dev")
        if y_dev is None:
            raise LabelMatrixError("L_dev was given without y_dev (the dev labels)")
        y_dev = check_labels(y_dev, self.cardinality, n_rows=L_dev.shape[0], name="y_dev")
        return (L_dev, y_dev) if len(y_dev) >= self.n_folds else None

    def _select_on_dev(self, votes: Votes, dev, prior, metal_config: MetalConfig, fits: dict) -> str:
        """Cross-fitted choice: a row's figure never comes from a prior fitted on its own label.

        Dawid-Skene and metal use no dev label at all (fitted once, kept in `fits` for reuse);
        majority vote's prior comes from the other folds' labels.
        """
        L_dev, y_dev = dev
        k = self.cardinality
        fits["dawid_skene"] = ds_fit = self._fit_dawid_skene(votes, prior)
        fits["metal"] = metal_fit = self._fit_metal(votes, prior, metal_config)
        folds = _fold_ids(len(y_dev), self.n_folds, self.seed_)
        probs = {"majority": np.zeros((len(y_dev), k)),
                 "dawid_skene": _with_prior_on_uncovered(dawid_skene_proba(L_dev, ds_fit), L_dev, ds_fit.class_prior),
                 "metal": metal_proba(L_dev, metal_fit)}
        for fold in range(self.n_folds):
            held = folds == fold
            fold_prior = prior if prior is not None else _prior_from_labels(y_dev[~held], k)
            probs["majority"][held] = majority_vote_proba(L_dev[held], k, class_prior=fold_prior)
        accuracy = {name: float(np.mean(p.argmax(1) == y_dev)) for name, p in probs.items()}
        log_loss = {name: _log_loss(p, y_dev) for name, p in probs.items()}
        chosen = max(probs, key=lambda name: (accuracy[name], -log_loss[name]))
        self.selection_ = DevSelection(n_dev=len(y_dev), n_folds=self.n_folds, accuracy=accuracy,
                                       log_loss=log_loss, chosen=chosen)
        return chosen

    # ---- prediction ----------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.chosen_method_ is None:
            raise RuntimeError("LabelModel is not fitted: call fit(L) or LabelModel.from_state(...) first")

    def predict_proba(self, L) -> np.ndarray:
        """n x k class probabilities (rows sum to 1); rows with no votes get the class prior."""
        self._require_fitted()
        L = check_label_matrix(L, self.cardinality, n_lfs=self.n_lfs_)
        if self.chosen_method_ == "majority":
            return majority_vote_proba(L, self.cardinality, class_prior=self.class_prior_)
        if self.chosen_method_ == "metal":
            return metal_proba(L, self.metal_fit_)  # uncovered rows get the prior by construction
        probs = dawid_skene_proba(L, self.ds_fit_)
        return _with_prior_on_uncovered(probs, L, self.class_prior_)

    def predict(self, L) -> np.ndarray:
        """Most probable class per row (ties go to the lower class id)."""
        return self.predict_proba(L).argmax(axis=1)

    def score(self, L, y) -> float:
        """Accuracy of `predict(L)` against gold labels `y`."""
        L = check_label_matrix(L, self.cardinality, n_lfs=self.n_lfs_)
        y = check_labels(y, self.cardinality, n_rows=L.shape[0])
        return float(np.mean(self.predict(L) == y)) if len(y) else float("nan")

    def get_conditional_probs(self) -> np.ndarray | None:
        """m x k x (k+1) table P(LF outputs o | class c), o == k is abstain (None for majority).

        Note the layout differs from Snorkel's (m x (k+1) x k, abstain first).
        """
        self._require_fitted()
        if self.metal_fit_ is not None:
            return metal_conditional_probs(self.metal_fit_)
        return None if self.ds_fit_ is None else self.ds_fit_.confusion.copy()

    # ---- state ---------------------------------------------------------------------------------
    def to_state(self) -> dict:
        """A JSON-serialisable dict from which `from_state` rebuilds the fitted model."""
        self._require_fitted()
        ds = self.ds_fit_
        state = LabelModelState(
            cardinality=self.cardinality, method=self.method, chosen_method=self.chosen_method_,
            n_lfs=self.n_lfs_, class_prior=[float(p) for p in self.class_prior_],
            confusion=None if ds is None else ds.confusion.tolist(),
            mu=None if self.metal_fit_ is None else self.metal_fit_.mu.tolist(), smoothing=self.smoothing,
            max_iter=self.max_iter, n_folds=self.n_folds, seed=self.seed_,
            log_likelihood=None if ds is None else ds.log_likelihood,
            n_iter=None if ds is None else ds.n_iter, selection=self.selection_)
        return state.model_dump(mode="json")

    @classmethod
    def from_state(cls, state: dict) -> "LabelModel":
        """Rebuild a fitted model from `to_state()` output (raises LabelMatrixError if malformed)."""
        try:
            parsed = LabelModelState.model_validate(state)
        except Exception as exc:  # pydantic's ValidationError: report as a user-actionable error
            raise LabelMatrixError(f"not a LabelModel state: {exc}") from exc
        if parsed.format != STATE_FORMAT:
            raise LabelMatrixError(f"unknown LabelModel state format {parsed.format!r}")
        if parsed.chosen_method not in METHODS[1:] or (parsed.chosen_method == "dawid_skene") != (parsed.confusion is not None):
            raise LabelMatrixError(f"LabelModel state: chosen method {parsed.chosen_method!r} does not match its parameters")
        model = cls(parsed.cardinality, parsed.method, smoothing=parsed.smoothing,
                    max_iter=parsed.max_iter, n_folds=parsed.n_folds)
        model.chosen_method_, model.n_lfs_, model.seed_ = parsed.chosen_method, parsed.n_lfs, parsed.seed
        model.class_prior_ = np.asarray(parsed.class_prior, dtype=float)
        model.selection_ = parsed.selection
        if parsed.confusion is not None:
            confusion = np.asarray(parsed.confusion, dtype=float)
            expected = (parsed.n_lfs, parsed.cardinality, parsed.cardinality + 1)
            if confusion.shape != expected:
                raise LabelMatrixError(f"state confusion has shape {confusion.shape}, expected {expected}")
            model.ds_fit_ = DawidSkeneFit(class_prior=model.class_prior_, confusion=confusion,
                                          log_likelihood=parsed.log_likelihood or float("nan"),
                                          n_iter=parsed.n_iter or 0, converged=True)
        if parsed.chosen_method == "metal":
            model.metal_fit_ = _metal_fit_from_state(parsed)
        return model

    def save(self, path: str | Path) -> None:
        """Write `to_state()` as JSON (I/O kept to this thin wrapper)."""
        Path(path).write_text(json.dumps(self.to_state()))

    @classmethod
    def load(cls, path: str | Path) -> "LabelModel":
        return cls.from_state(json.loads(Path(path).read_text()))


def _metal_fit_from_state(parsed: LabelModelState) -> MetalFit:
    k = parsed.cardinality
    mu = np.asarray(parsed.mu if parsed.mu is not None else [], dtype=float)
    if mu.shape != (parsed.n_lfs * k, k) or not np.all((mu > 0) & (mu < 1)):
        raise LabelMatrixError(f"state mu has shape {mu.shape} (expected {(parsed.n_lfs * k, k)}) "
                               "or values outside (0, 1)")
    return MetalFit(mu=mu, class_prior=np.asarray(parsed.class_prior, dtype=float), final_loss=float("nan"))
