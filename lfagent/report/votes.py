"""Re-apply a run's kept LFs to its unlabeled records, for the disagreement heatmap and the audit.

silver.jsonl holds no votes or texts, so they are rebuilt from the unlabeled file named in model.json.
Keywords and trusted regexes always run; embedding LFs need the (cached) MiniLM embeddings; code LFs and
LLM-written regexes need the sandbox pool. LFs that cannot run are skipped, each with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lfagent.sandbox.apply import is_trusted
from lfagent.errors import LFAgentError
from lfagent.rundir.read import RunArtifacts


@dataclass
class KeptVotes:
    """Votes of the kept LFs that could run, on the unlabeled records, in silver.jsonl order."""

    L: np.ndarray  # n x m', -1 = abstain
    names: list[str]
    texts: list[str]
    ids: list
    skipped: dict[str, str] = field(default_factory=dict)  # LF name -> why it has no votes here
    note: str = ""  # why there are no votes at all, when that is the case


def kept_lf_votes(run: RunArtifacts, *, embeddings: bool = True, sandbox: bool = True) -> KeptVotes:
    """Votes of `run`'s kept LFs on its unlabeled records; never raises for a missing file or backend."""
    try:
        from lfagent.data.dataset import load_unlabeled

        records = load_unlabeled(run.model.task_spec())
    except (LFAgentError, OSError, ValueError) as exc:
        return KeptVotes(L=np.zeros((0, 0), np.int16), names=[], texts=[], ids=[],
                         note=f"unlabeled records not readable ({exc}); no per-record votes")
    texts, rows, ids = _in_silver_order(run, records)
    lfs = run.model.lfs
    skipped: dict[str, str] = {}
    emb = None
    if any(lf.kind == "embedding" for lf in lfs):
        emb, why = _embeddings(texts, run.model.labeler.embedder) if embeddings else (None, "embeddings turned off")
        for lf in lfs:
            if lf.kind == "embedding" and (emb is None or len(lf.prototypes[0]) != emb.shape[1]):
                skipped[lf.name] = why if emb is None else (f"prototypes have {len(lf.prototypes[0])} dimensions, "
                                                            f"embeddings {emb.shape[1]}")
    pool, why_no_pool = _pool() if sandbox and any(not is_trusted(lf) for lf in lfs) else (None, "sandbox turned off")
    if pool is None:
        skipped.update({lf.name: why_no_pool for lf in lfs if not is_trusted(lf)})
    runnable = [lf for lf in lfs if lf.name not in skipped]
    try:
        labeler = run.model.labeler.model_copy(update={"lfs": runnable})  # the run's labeler, runnable LFs
        outcome = labeler.apply(texts, rows, embeddings=emb, pool=pool)
    except (LFAgentError, ValueError) as exc:  # e.g. an LF voting a class the task lacks
        return KeptVotes(L=np.zeros((len(texts), 0), np.int16), names=[], texts=texts, ids=ids, skipped=skipped,
                         note=f"kept LFs could not be re-applied: {exc}")
    finally:
        if pool is not None:
            pool.close()
    skipped.update({name: f"sandbox: {why}" for name, why in outcome.errors.items()})
    keep = [j for j, lf in enumerate(runnable) if lf.name not in outcome.errors]
    return KeptVotes(L=outcome.L[:, keep], names=[runnable[j].name for j in keep], texts=texts, ids=ids,
                     skipped=skipped)


def _in_silver_order(run: RunArtifacts, records):
    """Records reordered to silver.jsonl's order (they match unless the file changed since the run)."""
    silver_ids = [row.get("id") for row in run.silver]
    if not silver_ids or silver_ids == list(records.ids):
        return records.texts, records.rows, list(records.ids)
    position = {rid: i for i, rid in enumerate(records.ids)}
    order = [position[rid] for rid in silver_ids if rid in position]
    return ([records.texts[i] for i in order], [records.rows[i] for i in order],
            [records.ids[i] for i in order])


def _embeddings(texts: list[str], name: str):
    try:
        from lfagent.data.embed import Embedder
        from lfagent.data.embed import default_cache_dir

        embedder = Embedder(default_cache_dir() / "embeddings.sqlite", embedder=name)  # the run's encoder
        try:
            return embedder.encode(texts), ""
        finally:
            embedder.close()
    except Exception as exc:  # an optional figure: any failure to embed just skips those LFs
        return None, f"embeddings unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def _pool():
    try:
        from lfagent.sandbox import SandboxPool

        return SandboxPool(workers=1), ""
    except Exception as exc:  # the sandbox is optional for a report; say why its LFs are missing
        return None, f"sandbox unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
