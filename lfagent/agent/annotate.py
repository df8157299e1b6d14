"""The LLM labels a budgeted set of records; its labels enter the label model as one more LF, never as gold.

Which records: those whose label would change the model most under the current fit, taken in turn from
three queues so that no one kind crowds out the others: rows where the kept LFs vote different classes
(conflicts), rows no LF votes on (only the embedding expert and the prior decide them), and the rows
whose silver label is least certain (smallest margin between the top two classes). Each queue is ordered
by margin; ties break by a seeded shuffle. Texts are deduplicated by `text_key`, so a repeated text costs
one label.

The LLM also labels every seed (about a tenth of the calls for a few hundred records): seeds are never
shown with their labels, so its votes there are an honest measure of its accuracy, and the LF carrying its
labels (`llm_annotations`, kind "lookup") is judged by selection and weighed by the label model like any
other LF. A model that labels worse than chance on the seeds is dropped with that reason.

Resumable: the chosen rows are stored (run meta `annotation_plan`) before any call, so a run killed
during annotation asks the same requests again and the response cache answers those already paid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lfagent.errors import InputError
from lfagent.lf import ABSTAIN, LabelingFunction, Provenance, text_key

ANNOTATION_LF = "llm_annotations"
SOURCE = "llm:annotate"
BATCH_SIZE = 10  # records per request: one short line of reply each, so the prompt dominates the cost
DEFAULT_HOSTED = 300  # --annotate with a hosted model: ~40 calls with the seeds, in the order of one round's
PLAN = "annotation_plan"
DONE = "annotation"
REASONS = ("conflict", "uncovered", "uncertain")


def default_annotate(llm_spec: str | None) -> int:
    """Records to annotate when --annotate is not given: a few hundred with a hosted (openai) model, none
    with the embedded one, whose labels are worth little and whose calls are slow."""
    from lfagent.llm.factory import openai_configured

    kind = (llm_spec or "auto").split(":", 1)[0].lower()
    return DEFAULT_HOSTED if kind == "openai" or (kind == "auto" and openai_configured()) else 0


def select_for_annotation(probs: np.ndarray, covered: np.ndarray, L_unl: np.ndarray, texts: list[str], n: int, *,
                          seed: int, skip_keys: frozenset[str] | set[str] = frozenset()) -> list[tuple[int, str]]:
    """Up to `n` unlabeled rows to annotate as (row, reason), reason one of REASONS (see the module doc).

    `probs` (rows x k) and `covered` are the current fit's silver output, `L_unl` the kept LFs' votes;
    rows whose text_key is in `skip_keys` (labelled already) and repeats of a chosen text are passed over.
    """
    probs = np.asarray(probs, dtype=float)
    rows = len(texts)
    if n <= 0 or rows == 0:
        return []
    top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] >= 2 else np.hstack([np.zeros((rows, 1)), probs])
    margin = top2[:, 1] - top2[:, 0]
    shuffle = np.random.default_rng(seed).permutation(rows)
    order = shuffle[np.argsort(margin[shuffle], kind="stable")]  # least certain first, seeded ties
    L = np.asarray(L_unl)
    voted = [set(row[row != ABSTAIN].tolist()) for row in L] if L.shape[1] else [set()] * rows
    queues = {"conflict": [i for i in order if len(voted[i]) > 1],
              "uncovered": [i for i in order if not covered[i]],
              "uncertain": list(order)}
    seen = set(skip_keys)
    chosen: list[tuple[int, str]] = []
    heads = dict.fromkeys(REASONS, 0)
    while len(chosen) < n and any(heads[r] < len(queues[r]) for r in REASONS):
        for reason in REASONS:
            queue = queues[reason]
            while heads[reason] < len(queue):
                i = int(queue[heads[reason]])
                heads[reason] += 1
                key = text_key(texts[i])
                if key not in seen:
                    seen.add(key)
                    chosen.append((i, reason))
                    break
            if len(chosen) >= n:
                break
    return chosen


@dataclass
class AnnotationReport:
    asked: int = 0  # unlabeled records sent to the LLM
    labelled: int = 0  # ...of which it labelled with a class
    seeds_asked: int = 0
    seeds_labelled: int = 0
    seeds_right: int = 0  # seeds it labelled with their seed label
    calls: int = 0  # requests made (answered from the cache or not)
    failures: list[str] = field(default_factory=list)
    budget_spent: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)
    lf: LabelingFunction | None = None
    skipped: str | None = None  # why nothing was asked

    @property
    def seed_accuracy(self) -> float | None:
        return self.seeds_right / self.seeds_labelled if self.seeds_labelled else None


def annotate_records(session, n: int, *, round_: int = 0, batch_size: int = BATCH_SIZE) -> AnnotationReport:
    """Have the LLM label `n` chosen unlabeled records and every seed; store its labels as the LF
    `llm_annotations` (a candidate: the next fit scores it). Records it labelled before are kept and not
    asked again. Returns what was asked, labelled and spent."""
    from lfagent.propose.llm_labels import labels_request, parse_labels
    from lfagent.propose.prompting import PromptContext

    if n < 0:
        raise InputError(f"annotate: the number of records must be >= 0, got {n}")
    if session.task.multi_label:
        return AnnotationReport(skipped="multi-label tasks are not annotated yet")
    if session.llm is None:
        raise InputError("annotation needs an LLM (--llm local or openai:MODEL), this session has none")
    store = session.store
    previous = {lf.name: lf for lf, *_ in store.lfs()}.get(ANNOTATION_LF)
    lookup = dict(previous.lookup) if previous is not None else {}
    plan = _plan(session, n, frozenset(lookup))
    seed_rows = _first_of_each_text(session.seeds.texts)
    rows = [("seed", i) for i in seed_rows] + [("unlabeled", i) for i, _ in plan]
    texts = [session.seeds.texts[i] if where == "seed" else session.unlabeled.texts[i] for where, i in rows]
    batches = [list(range(start, min(start + batch_size, len(rows)))) for start in range(0, len(rows), batch_size)]
    context = PromptContext(task=session.task, examples={})  # the task only: a resumed run asks the same
    requests = [labels_request(context, [texts[j] for j in batch]) for batch in batches]
    report = AnnotationReport(asked=len(plan), seeds_asked=len(seed_rows), calls=len(requests),
                              by_reason={r: sum(reason == r for _, reason in plan) for r in REASONS})
    replies = _ask(session, requests, round_)
    names = session.task.class_names
    for batch, reply in zip(batches, replies):
        if isinstance(reply, str):
            for position, name in parse_labels(reply, len(batch), names).items():
                j = batch[position]
                lookup[text_key(texts[j])] = name
                where, i = rows[j]
                if where == "seed":
                    report.seeds_labelled += 1
                    report.seeds_right += int(names.index(name) == int(session.seeds.y[i]))
                else:
                    report.labelled += 1
        else:
            report.failures.append(reply.message)
            report.budget_spent = report.budget_spent or reply.kind == "budget"
    if lookup:
        report.lf = _annotation_lf(lookup, model=getattr(session.llm, "model", "") or "llm", round_=round_)
        session.add_lf(report.lf, round_=round_)  # the same name: its spec is replaced
    store.event("annotate", {"asked": report.asked, "labelled": report.labelled, "seeds_asked": report.seeds_asked,
                             "seeds_labelled": report.seeds_labelled, "seeds_right": report.seeds_right,
                             "calls": report.calls, "by_reason": report.by_reason,
                             "failures": report.failures[:5], "budget_spent": report.budget_spent})
    return report


def _plan(session, n: int, skip_keys: frozenset[str]) -> list[tuple[int, str]]:
    """The rows to ask about: the stored plan for this `n` (a resumed run), else a new selection, stored
    before any call is made."""
    stored = session.store.get_meta(PLAN)
    texts = session.unlabeled.texts
    if stored and stored["n"] == n and all(0 <= i < len(texts) and text_key(texts[i]) == key
                                           for i, _, key in stored["rows"]):
        return [(i, reason) for i, reason, _ in stored["rows"]]
    if session.result is None:
        session.fit()
    result = session.result
    _, L_unl = session.votes.matrices(result.labeler.lfs)
    chosen = select_for_annotation(result.probs, result.covered, L_unl, texts, n, seed=session.config.seed,
                                   skip_keys=skip_keys | {text_key(t) for t in session.seeds.texts})
    session.store.set_meta(PLAN, {"n": n, "rows": [[i, reason, text_key(texts[i])] for i, reason in chosen]})
    return chosen


def _first_of_each_text(texts: list[str]) -> list[int]:
    seen: set[str] = set()
    first = []
    for i, text in enumerate(texts):
        key = text_key(text)
        if key not in seen:
            seen.add(key)
            first.append(i)
    return first


def _ask(session, requests, round_: int) -> list:
    """Replies (text) or LLMFailure per request, recorded in the run store as the annotation's calls."""
    from lfagent.llm.base import LLMFailure

    session.llm_round, session.llm_purpose = round_, "annotate"
    try:
        replies = session.llm.chat_many(requests) if requests else []
    finally:
        session.llm_purpose = "propose"
    return [reply if isinstance(reply, LLMFailure) else reply.text for reply in replies]


def _annotation_lf(lookup: dict[str, str], *, model: str, round_: int) -> LabelingFunction:
    return LabelingFunction(name=ANNOTATION_LF, kind="lookup", lookup=dict(sorted(lookup.items())),
                            provenance=Provenance(source=SOURCE, detail=model, round=round_),
                            description="the LLM's own labels of records")
