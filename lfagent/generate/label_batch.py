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

from lfagent.rundir.files import RunModel
from lfagent.generate.stream import Batch



def output_schema(model: RunModel, *, votes: bool) -> pa.Schema:
    labeler = model.labeler
    fields = [pa.field("id", pa.string())]
    if labeler.multi_label:
        fields.append(pa.field("labels", pa.list_(pa.string())))
    else:
        fields.append(pa.field("label", pa.string()))
    fields += [pa.field("probs", pa.struct([pa.field(c, pa.float64()) for c in labeler.class_names])),
               pa.field("confidence", pa.float64()), pa.field("covered", pa.bool_())]
    if votes:
        fields.append(pa.field("votes", pa.struct([pa.field(lf.name, pa.string()) for lf in labeler.lfs])))
    fields += [pa.field("run_id", pa.string()), pa.field("lf_set_hash", pa.string())]
    return pa.schema(fields)


def label_batch(model: RunModel, batch: Batch, *, votes: bool = False, pool=None,
                embed: Callable[[list[str]], np.ndarray] | None = None,
                embed_expert: Callable[[list[str]], np.ndarray] | None = None,
                code_votes: np.ndarray | None = None) -> pa.Table:
    """Label one batch. `embed` encodes texts (needed when the run uses embeddings), `embed_expert` with the
    expert's fine-tuned encoder (when it has one); `pool` runs code LFs, unless `code_votes` holds their columns."""
    labeler = model.labeler
    embeddings = embed(batch.texts) if labeler.needs_embeddings and embed is not None else None
    expert_embeddings = (embed_expert(batch.texts) if labeler.needs_expert_embeddings and embed_expert is not None
                         else None)
    L = labeler.votes(batch.texts, batch.rows, pool=pool, embeddings=embeddings, code_votes=code_votes)
    probs, covered = labeler.proba(L, embeddings, expert_embeddings)
    return rows_table(model, batch.ids, probs, covered, L if votes else None)


def rows_table(model: RunModel, ids: list[str], probs: np.ndarray, covered: np.ndarray,
               L: np.ndarray | None) -> pa.Table:
    """Columnar output rows; the labels are the labeler's decisions, as in silver.jsonl."""
    labeler = model.labeler
    names = np.asarray(labeler.class_names, dtype=object)
    n = len(ids)
    columns: list[pa.Array] = [pa.array(ids, type=pa.string())]
    if labeler.multi_label:
        columns.append(pa.array(labeler.decide(probs), type=pa.list_(pa.string())))
        confidence = np.maximum(probs, 1 - probs).min(axis=1) if probs.shape[1] else np.ones(n)
    else:
        columns.append(pa.array(labeler.decide(probs), type=pa.string()))
        confidence = probs.max(axis=1)
    columns.append(pa.StructArray.from_arrays([pa.array(probs[:, c], type=pa.float64())
                                               for c in range(len(names))], names=list(names)))
    columns += [pa.array(confidence, type=pa.float64()), pa.array(np.asarray(covered, dtype=bool))]
    if L is not None:
        columns.append(_votes_struct(labeler.lfs, names, L))
    columns += [pa.array([model.run_id] * n, type=pa.string()),
                pa.array([model.lf_set_hash] * n, type=pa.string())]
    return pa.Table.from_arrays(columns, schema=output_schema(model, votes=L is not None))


def _votes_struct(lfs, names: np.ndarray, L: np.ndarray) -> pa.StructArray:
    arrays = []
    for j in range(L.shape[1]):
        column = L[:, j]
        abstain = column < 0
        arrays.append(pa.array(names[np.where(abstain, 0, column)].tolist(), type=pa.string(), mask=abstain))
    if not arrays:
        return pa.array([{}] * len(L), type=pa.struct([]))
    return pa.StructArray.from_arrays(arrays, names=[lf.name for lf in lfs])
