"""Multi-label aggregation: one binary label model per class, independent probabilities.

Input is the ordinary label matrix L. For class c an LF's output is read as:
  vote == c           -> positive vote for c (binary label 1),
  vote == other class -> with other_class_votes="negative": a negative vote for c (binary 0) when the
                         LF itself sometimes votes c (an either/or LF), else abstain; with "all": a
                         negative vote from every LF; with "abstain": never a negative,
  abstain             -> abstain.
Why "negative" (the default) spares LFs that never vote c: in a multi-label task "LF says d" is no
evidence against c, and on synthetic data many such votes (correlated with one another through d)
pulled Dawid-Skene's latent class for c onto d (AUC 0.56 for c vs 0.93 when they abstain).
One source's label sets (an LLM's record labels: one LF per class, `label_sets` maps its column to the class)
say what a record is *not* too: where the source labelled a record (any of its columns votes) without class
c, its column for c is a negative vote for c, not an abstain. Read as abstains, a record the LLM labelled
{gratitude} looked to the label model like one it never saw, and other LFs' votes for admiration stood
unopposed.
Such a source was asked about some records only, so its silence elsewhere says nothing about any class: its
columns share one abstain rate across classes in Dawid-Skene's fit. And when it also labelled rows of known class
(the seeds, `fit(..., L_known=, Y_known=)`), its rates are measured there (it never saw their labels, so they
measure it honestly), and the other LFs are measured against it on the records it labelled, without EM. (Other
LFs' votes on the seeds do not count: an LF mined from the seeds looks better on them than it is.) Left to EM,
that source beside a sparse LF or two is not identified, and beside several LFs of one class the latent class
drifts to what they catch (evals/results/label-set-seeds/).
Each class gets its own binary `LabelModel`, so the k probabilities are independent (need not sum to 1).
method="auto" without dev labels means Dawid-Skene here, not Snorkel's estimator ("metal"): a binary view
is mostly negatives and metal keeps a fixed uniform prior, so every row without votes got 0.5 (on the
synthetic test: per-class ECE 0.36 vs 0.17, same AUC). With dev labels, auto chooses as usual.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from lfagent.fit.dawid_skene import KnownRows
from lfagent.fit.label_matrix import LabelMatrixError, check_cardinality, check_label_matrix
from lfagent.fit.label_model import LabelModel, Method


OtherClassVotes = Literal["negative", "all", "abstain"]


def binary_view(L: np.ndarray, target_class: int, other_class_votes: OtherClassVotes = "negative",
                label_sets: dict[int, int] | None = None) -> np.ndarray:
    """L recoded for one class: 1 = voted target_class, 0 = counts against it, -1 = abstain.

    `label_sets`: column -> class of one source's per-class LFs (see the module doc)."""
    if other_class_votes not in ("negative", "all", "abstain"):
        raise LabelMatrixError(f"other_class_votes must be 'negative', 'all' or 'abstain', got {other_class_votes!r}")
    positive = L == target_class
    negative = (L >= 0) & ~positive
    if other_class_votes == "abstain":
        negative[:] = False
    elif other_class_votes == "negative":
        negative &= positive.any(axis=0)[None, :]  # only LFs that can also vote target_class
    if label_sets:
        columns = sorted(label_sets)
        labelled = (L[:, columns] >= 0).any(axis=1)
        for j in columns:
            negative[:, j] = labelled & ~positive[:, j] if label_sets[j] == target_class else False
    return np.where(positive, 1, np.where(negative, 0, -1)).astype(np.int64)


class MultiLabelModel:
    """k independent binary label models; `predict_proba` gives n x k values in [0, 1]."""

    def __init__(self, cardinality: int, method: Method = "auto", *,
                 other_class_votes: OtherClassVotes = "negative", label_sets: dict[int, int] | None = None,
                 **label_model_options):
        self.cardinality = check_cardinality(cardinality)
        self.method = method
        binary_view(np.zeros((0, 1), dtype=np.int64), 0, other_class_votes)  # validates the option
        self.other_class_votes = other_class_votes
        self.label_sets = {int(j): int(c) for j, c in (label_sets or {}).items()}
        self.label_model_options = label_model_options
        self.models_: list[LabelModel] | None = None

    def fit(self, L, seed: int = 0, *, L_dev=None, Y_dev=None, L_known=None, Y_known=None) -> "MultiLabelModel":
        """Fit one binary model per class. Y_dev (n_dev x k, 0/1) with L_dev enables auto selection.
        L_known with Y_known (the same shapes): rows of known classes that measure the label-set source's rates
        (see the module doc)."""
        L = check_label_matrix(L, self.cardinality)
        L_dev, Y_dev = self._check_labelled(L, L_dev, Y_dev, "dev")
        L_known, Y_known = self._check_labelled(L, L_known, Y_known, "known")
        method = "dawid_skene" if self.method == "auto" and L_dev is None else self.method
        source = tuple(sorted(self.label_sets))  # asked about some records only: its abstains are "unasked"
        self.models_ = []
        for c in range(self.cardinality):
            dev = {} if L_dev is None else {"L_dev": self._view(L_dev, c), "y_dev": Y_dev[:, c].astype(np.int64)}
            known = None
            if L_known is not None and source:
                known = KnownRows.from_votes(self._view(L_known, c), Y_known[:, c], 2, source)
            model = LabelModel(2, method, **self.label_model_options)
            self.models_.append(model.fit(self._view(L, c), seed=seed + c, known=known, unasked=source, **dev))
        return self

    def _check_labelled(self, L: np.ndarray, L_rows, Y_rows, what: str):
        if L_rows is None:
            return None, None
        L_rows = check_label_matrix(L_rows, self.cardinality, n_lfs=L.shape[1], name=f"L_{what}")
        Y_rows = np.asarray(Y_rows)
        if Y_rows.shape != (L_rows.shape[0], self.cardinality) or not np.all((Y_rows == 0) | (Y_rows == 1)):
            raise LabelMatrixError(f"Y_{what} must be a 0/1 array of shape {(L_rows.shape[0], self.cardinality)}")
        return L_rows, Y_rows.astype(np.int64)

    def predict_proba(self, L) -> np.ndarray:
        if self.models_ is None:
            raise RuntimeError("MultiLabelModel is not fitted: call fit(L) first")
        L = check_label_matrix(L, self.cardinality, n_lfs=self.models_[0].n_lfs_)
        return np.column_stack([m.predict_proba(self._view(L, c))[:, 1] for c, m in enumerate(self.models_)])

    def _view(self, L: np.ndarray, c: int) -> np.ndarray:
        return binary_view(L, c, self.other_class_votes, self.label_sets)

    def predict(self, L, threshold: float = 0.5) -> np.ndarray:
        """n x k 0/1 matrix: class c is on where its probability >= threshold."""
        return (self.predict_proba(L) >= threshold).astype(np.int64)

    def to_state(self) -> dict:
        if self.models_ is None:
            raise RuntimeError("MultiLabelModel is not fitted: call fit(L) first")
        return {"format": "lfagent.multilabel_model/1", "cardinality": self.cardinality,
                "method": self.method, "other_class_votes": self.other_class_votes,
                "label_sets": {str(j): c for j, c in self.label_sets.items()},
                "models": [m.to_state() for m in self.models_]}

    @classmethod
    def from_state(cls, state: dict) -> "MultiLabelModel":
        if not isinstance(state, dict) or state.get("format") != "lfagent.multilabel_model/1":
            raise LabelMatrixError("not a MultiLabelModel state")
        model = cls(state["cardinality"], state["method"],
                    other_class_votes=state.get("other_class_votes", "negative"),
                    label_sets={int(j): c for j, c in state.get("label_sets", {}).items()})
        model.models_ = [LabelModel.from_state(s) for s in state["models"]]
        return model
