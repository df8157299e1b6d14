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
other LF. A model that labels worse than chance on the seeds is dropped with that reason. A multi-label task
asks for every class that applies and keeps one such LF per class (`llm_annotations_CLASS`).

Where the expert is fine-tuned, the records the kept LFs label also train its final classifier (see
fit/fold_fit.py `annotated_rows`): the labels of a model the seeds found right reach records no LF covers.

Resumable: the chosen rows are stored (run meta `annotation_plan`) before any call, so a run killed
during annotation asks the same requests again and the response cache answers those already paid.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lfagent.errors import InputError
from lfagent.lf import ABSTAIN, ANNOTATION_SOURCE, LabelingFunction, Provenance, text_key

ANNOTATION_LF = "llm_annotations"
BATCH_SIZE = 10  # records per request: one short line of reply each, so the prompt dominates the cost
MAX_BATCH = 50  # more records than this in one request and a model starts to lose count of them
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
                          seed: int, skip_keys: frozenset[str] | set[str] = frozenset(),
                          multi_label: bool = False) -> list[tuple[int, str]]:
    """Up to `n` unlabeled rows to annotate as (row, reason), reason one of REASONS (see the module doc).

    `probs` (rows x k) and `covered` are the current fit's silver output, `L_unl` the kept LFs' votes;
    rows whose text_key is in `skip_keys` (labelled already) and repeats of a chosen text are passed over.
    Multi-label: a row's margin is that of its least certain class (|p - 0.5|), and LFs voting different
    classes are no conflict (a record may carry both).
    """
    probs = np.asarray(probs, dtype=float)
    rows = len(texts)
    if n <= 0 or rows == 0:
        return []
    if multi_label:
        margin = np.abs(2.0 * probs - 1.0).min(axis=1) if probs.shape[1] else np.zeros(rows)
    else:
        top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] >= 2 else np.hstack([np.zeros((rows, 1)), probs])
        margin = top2[:, 1] - top2[:, 0]
    shuffle = np.random.default_rng(seed).permutation(rows)
    order = shuffle[np.argsort(margin[shuffle], kind="stable")]  # least certain first, seeded ties
    L = np.asarray(L_unl)
    voted = [set(row[row != ABSTAIN].tolist()) for row in L] if L.shape[1] else [set()] * rows
    queues = {"conflict": [] if multi_label else [i for i in order if len(voted[i]) > 1],
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
    seeds_right: int = 0  # seeds it labelled with their seed label (multi-label: their whole label set)
    calls: int = 0  # requests made (answered from the cache or not)
    failures: list[str] = field(default_factory=list)
    budget_spent: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)
    lfs: list[LabelingFunction] = field(default_factory=list)  # one; multi-label: one per class it gave
    skipped: str | None = None  # why nothing was asked

    @property
    def seed_accuracy(self) -> float | None:
        return self.seeds_right / self.seeds_labelled if self.seeds_labelled else None


def annotate_records(session, n: int, *, round_: int = 0, batch_size: int | None = None) -> AnnotationReport:
    """Have the LLM label `n` chosen unlabeled records and every seed, `batch_size` records a request (None:
    BATCH_SIZE); store its labels as the LF `llm_annotations` (a candidate: the next fit scores it). Multi-label
    tasks get every class that applies, stored as one such LF per class (`llm_annotations_CLASS`, voting the class
    where the LLM gave it). Records it labelled before are kept and not asked again. A resumed run asks the
    requests of the plan it stored, with that plan's batch size, so the response cache answers those already
    paid. Returns what was asked, labelled and spent."""
    from lfagent.propose.llm_labels import labels_request, parse_label_sets, parse_labels
    from lfagent.propose.prompting import PromptContext

    if n < 0:
        raise InputError(f"annotate: the number of records must be >= 0, got {n}")
    batch_size = check_batch_size(batch_size)
    if session.llm is None:
        raise InputError("annotation needs an LLM (--llm local or openai:MODEL), this session has none")
    multi, names = session.task.multi_label, session.task.class_names
    known = _known_labels([lf for lf, *_ in session.store.lfs()], multi)
    plan, batch_size = _plan(session, n, frozenset(known), batch_size)
    seed_rows = _first_of_each_text(session.seeds.texts)
    rows = [("seed", i) for i in seed_rows] + [("unlabeled", i) for i, _ in plan]
    texts = [session.seeds.texts[i] if where == "seed" else session.unlabeled.texts[i] for where, i in rows]
    batches = [list(range(start, min(start + batch_size, len(rows)))) for start in range(0, len(rows), batch_size)]
    context = PromptContext(task=session.task, examples={})  # the task only: a resumed run asks the same
    requests = [labels_request(context, [texts[j] for j in batch]) for batch in batches]
    report = AnnotationReport(asked=len(plan), seeds_asked=len(seed_rows), calls=len(requests),
                              by_reason={r: sum(reason == r for _, reason in plan) for r in REASONS})
    replies = _ask(session, requests, round_)
    members = session.seed_members()
    for batch, reply in zip(batches, replies):
        if not isinstance(reply, str):
            report.failures.append(reply.message)
            report.budget_spent = report.budget_spent or reply.kind == "budget"
            continue
        parsed = parse_label_sets(reply, len(batch), names) if multi else parse_labels(reply, len(batch), names)
        for position, answer in parsed.items():
            j = batch[position]
            known[text_key(texts[j])] = answer
            where, i = rows[j]
            if where == "seed":
                given = set(answer) if multi else {answer}
                report.seeds_labelled += 1
                report.seeds_right += int(given == {names[c] for c in np.flatnonzero(members[i])})
            else:
                report.labelled += 1
    report.lfs = _annotation_lfs(known, names, multi, model=getattr(session.llm, "model", "") or "llm", round_=round_)
    for lf in report.lfs:
        session.add_lf(lf, round_=round_)  # the same name: its spec is replaced
    store = session.store
    store.event("annotate", {"asked": report.asked, "labelled": report.labelled, "seeds_asked": report.seeds_asked,
                             "seeds_labelled": report.seeds_labelled, "seeds_right": report.seeds_right,
                             "calls": report.calls, "by_reason": report.by_reason,
                             "failures": report.failures[:5], "budget_spent": report.budget_spent})
    return report


def annotation_lf_name(class_name: str | None = None) -> str:
    """`llm_annotations`; a multi-label task's LF for one class: `llm_annotations_` + the class as a name."""
    if class_name is None:
        return ANNOTATION_LF
    slug = re.sub(r"\W+", "_", class_name, flags=re.ASCII).strip("_")[:60] or "class"
    return f"{ANNOTATION_LF}_{slug}"


def _known_labels(lfs: list[LabelingFunction], multi: bool) -> dict:
    """What the stored annotation LFs hold: text key -> class name (multi-label: tuple of class names)."""
    mine = [lf for lf in lfs if lf.kind == "lookup" and lf.provenance.source == ANNOTATION_SOURCE]
    if not multi:
        return {key: name for lf in mine if lf.name == ANNOTATION_LF for key, name in lf.lookup.items()}
    sets: dict[str, set[str]] = {}
    for lf in mine:
        for key, name in lf.lookup.items():
            sets.setdefault(key, set()).add(name)
    return {key: tuple(sorted(names)) for key, names in sets.items()}


def _annotation_lfs(known: dict, names: list[str], multi: bool, *, model: str, round_: int) -> list[LabelingFunction]:
    def lf(name: str, lookup: dict[str, str], label: str | None, what: str) -> LabelingFunction:
        return LabelingFunction(name=name, kind="lookup", label=label, lookup=dict(sorted(lookup.items())),
                                provenance=Provenance(source=ANNOTATION_SOURCE, detail=model, round=round_), description=what)

    if not multi:
        return [lf(ANNOTATION_LF, known, None, "the LLM's own labels of records")] if known else []
    out = []
    for name in names:
        lookup = {key: name for key, given in known.items() if name in given}
        if lookup:
            out.append(lf(annotation_lf_name(name), lookup, name, f"the records the LLM labels {name}"))
    return out


def check_batch_size(batch_size: int | None) -> int:
    """Records a labelling request: `batch_size`, checked; None: BATCH_SIZE."""
    if batch_size is None:
        return BATCH_SIZE
    if not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"--annotate-batch: records per request must be 1 to {MAX_BATCH}, got {batch_size}")
    return batch_size


def _plan(session, n: int, skip_keys: frozenset[str], batch_size: int) -> tuple[list[tuple[int, str]], int]:
    """The rows to ask about and the records per request: the stored plan for this `n` (a resumed run), else a
    new selection, stored before any call is made."""
    stored = session.store.get_meta(PLAN)
    texts = session.unlabeled.texts
    if stored and stored["n"] == n and all(0 <= i < len(texts) and text_key(texts[i]) == key
                                           for i, _, key in stored["rows"]):
        return [(i, reason) for i, reason, _ in stored["rows"]], stored.get("batch", BATCH_SIZE)
    if session.result is None:
        session.fit()
    result = session.result
    _, L_unl = session.votes.matrices(result.labeler.lfs)
    chosen = select_for_annotation(result.probs, result.covered, L_unl, texts, n, seed=session.config.seed,
                                   skip_keys=skip_keys | {text_key(t) for t in session.seeds.texts},
                                   multi_label=session.task.multi_label)
    session.store.set_meta(PLAN, {"n": n, "batch": batch_size,
                                   "rows": [[i, reason, text_key(texts[i])] for i, reason in chosen]})
    return chosen, batch_size


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
