"""Write a fitted run's files (see lfagent/rundir/files.py for the layout)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lfagent.rundir.files import RunModel, save_model, silver_rows, write_json_atomic, write_jsonl_atomic
from lfagent.fit.crossfit import PipelineResult
from lfagent.data.dataset import Records
from lfagent.lf import lf_set_hash
from lfagent.scoring import format_table, lf_stats, lf_summary_table
from lfagent.task import TaskSpec


def write_run_outputs(run_dir: Path, task: TaskSpec, run_id: str, seeds: Records, unlabeled: Records,
                      result: PipelineResult, *, uses_embeddings: bool) -> None:
    run_dir = Path(run_dir)
    labeler = result.labeler
    model = RunModel(run_id=run_id, task={**task.model_dump(mode="json"), "base_dir": str(task.base_dir)},
                     labeler=labeler, lf_set_hash=lf_set_hash(labeler.lfs),
                     uses_embeddings=uses_embeddings and (labeler.needs_embeddings
                                                          or labeler.needs_expert_embeddings))
    save_model(run_dir, model)
    write_jsonl_atomic(run_dir / "silver.jsonl", silver_rows(unlabeled.ids, labeler, result.probs, result.covered))
    write_jsonl_atomic(run_dir / "heldout.jsonl", _heldout_rows(task, seeds, result))
    _write_lf_tables(run_dir, task, result)
    write_json_atomic(run_dir / "metrics.json", result.metrics.model_dump())


def _heldout_rows(task: TaskSpec, seeds: Records, result: PipelineResult):
    names = task.class_names
    for rid, text, y, p in zip(seeds.ids, seeds.texts, seeds.y, result.heldout_probs):
        label = [names[c] for c in np.nonzero(y)[0]] if task.multi_label else names[int(y)]
        yield {"id": rid, "text": text, "label": label,
               "probs": {n: round(float(v), 4) for n, v in zip(names, p)}}


def _write_lf_tables(run_dir: Path, task: TaskSpec, result: PipelineResult) -> None:
    final = result.final
    candidates = final.candidates
    L_seed, L_unl = result.votes.matrices(candidates)
    labels = [task.class_names.index(lf.label) if lf.label else -1 for lf in candidates]
    stats = lf_stats(L_seed, result.votes.corpus.seed_y, L_unl, cardinality=task.cardinality,
                     names=[lf.name for lf in candidates], lf_labels=labels) if candidates else []
    by_name = {s.name: s for s in stats}
    kept_names = [lf.name for lf in final.lfs]
    kept_stats = [by_name[n] for n in kept_names if n in by_name]
    write_json_atomic(run_dir / "lfs.json", [
        {"lf": lf.model_dump(mode="json"), "stats": by_name[lf.name].model_dump(mode="json")}
        for lf in final.lfs if lf.name in by_name])
    table = format_table(lf_summary_table(kept_stats, task.class_names)) if kept_stats else "(no LFs kept)\n"
    header = (f"Kept LFs for task {task.name}: seed figures are on the seeds used for selection;\n"
              f"see metrics.json for cross-fitted (honest) figures.\n\n")
    vouched = [n for n in kept_names if n in final.vouched]
    footer = ("\nVouched for by meaning (seed votes too few or too thin to decide; keyword and matched "
              f"records mean the class): {', '.join(vouched)}\n" if vouched else "")
    (run_dir / "lfs.txt").write_text(header + table + "\n" + footer, encoding="utf-8")
    write_json_atomic(run_dir / "candidates.json", [
        {"name": lf.name, "kind": lf.kind, "label": lf.label, "summary": lf.summary(),
         "source": lf.provenance.source, "kept": lf.name in set(kept_names),
         "reason": final.reason(lf.name),
         "stats": by_name[lf.name].model_dump(mode="json") if lf.name in by_name else None}
        for lf in candidates])
