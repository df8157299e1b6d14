"""The pure step of `generate`: one batch of records -> one table of output rows.

Output columns (the contract of OUT.parquet / OUT.jsonl):
  id           string; `<file stem>:<row position>` when the record has none
  label        hard label (single-label tasks)   | labels  classes whose p reaches the run's threshold (multi-label)
  probs        per-class calibrated probability (a struct in Parquet, an object in JSONL)
  confidence   max probability (single-label); multi-label: the least sure class's max(p, 1-p)
  covered      whether any LF voted (else the label comes from the fallback or the prior)
  votes        (--votes only) each kept LF's vote: a class name or null for abstain
  run_id, lf_set_hash  provenance: which run and which exact set of LFs labelled the row
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from lfagent.generate.model import Predictor
from lfagent.generate.stream import Batch



def output_schema(predictor: Predictor, *, votes: bool) -> pa.Schema:
    fields = [pa.field("id", pa.string())]
    if predictor.multi_label:
        fields.append(pa.field("labels", pa.list_(pa.string())))
    else:
        fields.append(pa.field("label", pa.string()))
    fields += [pa.field("probs", pa.struct([pa.field(c, pa.float64()) for c in predictor.class_names])),
               pa.field("confidence", pa.float64()), pa.field("covered", pa.bool_())]
    if votes:
        fields.append(pa.field("votes", pa.struct([pa.field(lf.name, pa.string()) for lf in predictor.lfs])))
    fields += [pa.field("run_id", pa.string()), pa.field("lf_set_hash", pa.string())]
    return pa.schema(fields)


def label_batch(predictor: Predictor, batch: Batch, *, votes: bool = False, pool=None,
                embed: Callable[[list[str]], np.ndarray] | None = None,
                code_votes: np.ndarray | None = None) -> pa.Table:
    """Label one batch. `embed` encodes texts (needed when the run uses embeddings); `pool` runs code LFs,
    unless `code_votes` already holds their columns."""
    embeddings = embed(batch.texts) if predictor.needs_embeddings and embed is not None else None
    L = predictor.votes(batch.texts, batch.rows, pool=pool, embeddings=embeddings, code_votes=code_votes)
    probs, covered = predictor.probabilities(L, embeddings)
    return rows_table(predictor, batch.ids, probs, covered, L if votes else None)


def rows_table(predictor: Predictor, ids: list[str], probs: np.ndarray, covered: np.ndarray,
               L: np.ndarray | None) -> pa.Table:
    """Columnar output rows (no per-row Python dicts: a million rows must stay cheap)."""
    names = np.asarray(predictor.class_names, dtype=object)
    n = len(ids)
    columns: list[pa.Array] = [pa.array(ids, type=pa.string())]
    if predictor.multi_label:
        hot = predictor.calibrator.decide(probs)
        columns.append(pa.array([list(names[row]) for row in hot], type=pa.list_(pa.string())))
        confidence = np.maximum(probs, 1 - probs).min(axis=1) if probs.shape[1] else np.ones(n)
    else:
        columns.append(pa.array(names[probs.argmax(axis=1)].tolist(), type=pa.string()))
        confidence = probs.max(axis=1)
    columns.append(pa.StructArray.from_arrays([pa.array(probs[:, c], type=pa.float64())
                                               for c in range(len(names))], names=list(names)))
    columns += [pa.array(confidence, type=pa.float64()), pa.array(np.asarray(covered, dtype=bool))]
    if L is not None:
        columns.append(_votes_struct(predictor, names, L))
    columns += [pa.array([predictor.run_id] * n, type=pa.string()),
                pa.array([predictor.lf_set_hash] * n, type=pa.string())]
    return pa.Table.from_arrays(columns, schema=output_schema(predictor, votes=L is not None))


def _votes_struct(predictor: Predictor, names: np.ndarray, L: np.ndarray) -> pa.StructArray:
    arrays = []
    for j in range(L.shape[1]):
        column = L[:, j]
        abstain = column < 0
        arrays.append(pa.array(names[np.where(abstain, 0, column)].tolist(), type=pa.string(), mask=abstain))
    if not arrays:
        return pa.array([{}] * len(L), type=pa.struct([]))
    return pa.StructArray.from_arrays(arrays, names=[lf.name for lf in predictor.lfs])
