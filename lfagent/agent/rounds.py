"""Agent rounds: propose -> sandbox -> score -> keep -> refit, until budget, plateau or --rounds.

Resumable: finished rounds are in the run store and skipped; the interrupted round is re-asked with
the same prompts (the state it saw is rebuilt from the store), so its LLM calls hit the response cache
and nothing is paid twice.
"""
from __future__ import annotations

from pydantic import BaseModel

from lfagent.agent.annotate import BATCH_SIZE
from lfagent.errors import BudgetExhausted, LLMError


class LoopSettings(BaseModel):
    rounds: int = 3
    code_per_class: int = 1
    keyword_examples: int = 3  # seed texts per class to pull keywords from, each round
    # Recall requests per class, each round (propose/llm_recall.py): asked before the copy requests, so that
    # a call budget that runs short is spent on what only a knowledgeable model can add. The copy requests
    # stay: a small model copies well and recalls badly, and what it recalls is judged and mostly dropped.
    recall_per_class: int = 1
    concepts_in_round: int = 1  # concept extraction is asked once, in this round
    plateau_rounds: int = 2  # stop after this many rounds without improvement...
    min_improvement: float = 0.005  # ...of the cross-fitted seed accuracy by at least this
    annotate: int = 0  # records the LLM labels (agent/annotate.py), once, after round `annotate_after`
    # After round 1: its LLM LFs are in the fit, so the records chosen are those LFs leave uncertain; and
    # the labels are paid for before later rounds, whose proposals add less, can spend the call budget.
    annotate_after: int = 1
    annotate_batch: int = BATCH_SIZE  # records a labelling request


def agent_rounds(session, *, rounds: int = 3, settings: LoopSettings | None = None) -> list[dict]:
    """Walk the rounds; the LLM's call and token limits are the session's (`Session(limits=...)`)."""
    settings = settings or LoopSettings(rounds=rounds)
    say = session.say
    store = session.store
    done = {r["round"]: r["metrics"] for r in store.rounds() if r["status"] == "done"}
    stale = True
    history = [done[r]["seed_accuracy"] for r in sorted(done)]
    if 0 not in done:
        store.start_round(0)
        say("round 0: mined LFs only")
        metrics = session.fit()
        stale = False
        store.finish_round(0, metrics.model_dump())
        history = [metrics.seed_accuracy]
    annotated = False
    for round_ in range(1, settings.rounds + 1):
        if round_ > settings.annotate_after and not annotated:  # a resumed run killed while annotating
            annotated = True
            stale = not annotate_once(session, settings) and stale
        if round_ in done:
            continue
        if stale:
            session.fit()
            stale = False
        store.start_round(round_)
        say(f"round {round_}: asking the LLM")
        try:
            report = _propose_round(session, round_, settings)
        except BudgetExhausted as exc:
            say(f"stopping: {exc}")
            store.event("stop", {"reason": str(exc)})
            break
        except LLMError as exc:  # misconfigured backend: every call would fail the same way
            store.event("stop", {"reason": str(exc)})
            raise
        say(f"round {round_}: {len(report.added)} new LFs, {len(report.rejected)} rejected; scoring them")
        # No screen outside the folds: each fold judges the LLM's LFs on its own seeds and on their agreement
        # with the model fitted without them (fit/fold_fit.py), so the cross-fitted accuracy reported is not
        # the best of many comparisons on the same 100 seeds. Runs made before keep their `screened_out` meta,
        # which Session.pins still obeys.
        metrics = session.fit()
        store.finish_round(round_, {**metrics.model_dump(), "added": [lf.name for lf in report.added],
                                    "rejected": len(report.rejected), "llm_failures": len(report.failures)})
        history.append(metrics.seed_accuracy)
        if round_ == settings.annotate_after and not report.budget_spent:
            annotated = True
            stale = not annotate_once(session, settings) and stale
        if report.budget_spent:
            say("stopping: LLM budget spent")
            store.event("stop", {"reason": "budget"})
            break
        if _plateaued(history, settings):
            say("stopping: cross-fitted seed accuracy has plateaued")
            store.event("stop", {"reason": "plateau"})
            break
    if not annotated and annotate_once(session, settings):  # fewer rounds than annotate_after, or a stop
        stale = False
    if stale or session.result is None:
        session.fit()
    return store.rounds()


def annotate_once(session, settings: LoopSettings) -> bool:
    """The LLM labels `settings.annotate` records once per run (see agent/annotate.py), then the model is
    refit with its labels as one more LF. Its LF is not judged by agreement with the model (its records are
    chosen where the model is unsure): selection judges its seed votes and the label model weighs it.
    Returns whether it refit."""
    from lfagent.agent.annotate import DONE

    store = session.store
    if settings.annotate <= 0 or store.get_meta(DONE) is not None:
        return False
    session.say(f"annotation: the LLM labels {settings.annotate} records and the seeds")
    report = session.annotate(settings.annotate, round_=settings.annotate_after, batch_size=settings.annotate_batch)
    if report.skipped:
        session.say(f"annotation skipped: {report.skipped}")
        store.set_meta(DONE, {"skipped": report.skipped})
        return False
    accuracy = "n/a" if report.seed_accuracy is None else f"{report.seed_accuracy:.2f}"
    session.say(f"annotation: {report.labelled} of {report.asked} records and {report.seeds_labelled} of "
                f"{report.seeds_asked} seeds labelled (right on {accuracy} of those seeds) in {report.calls} "
                f"requests" + ("; the LLM budget ran out (--annotate-batch packs more records in a request)"
                               if report.budget_spent else ""))
    done = {"labelled": report.labelled, "seeds_labelled": report.seeds_labelled, "seeds_right": report.seeds_right,
            "calls": report.calls, "budget_spent": report.budget_spent}
    if not report.lfs:  # nothing labelled: nothing to refit with
        store.set_meta(DONE, done)
        return False
    metrics = session.fit()
    names = {lf.name for lf in report.lfs}
    rows = [row for row in session.lfs if row["name"] in names]
    for row in rows:
        if row["status"] != "kept":
            session.say(f"annotation: {row['name']} dropped: {row['reason']}")
    kept = [row for row in rows if row["status"] == "kept"]
    first = (kept or rows)[0]
    # Done also when the budget ran out: the run goes on with the labels it got and does not ask again.
    store.set_meta(DONE, {**done, "status": first["status"], "reason": first["reason"],
                          "lfs": {row["name"]: row["status"] for row in rows}, "metrics": metrics.model_dump()})
    return True


def _propose_round(session, round_: int, settings: LoopSettings):
    from lfagent.propose.llm_proposer import ProposalReport

    stage = session.proposals(round_)
    if round_ == 1:
        stage.write_guideline()
    report = ProposalReport()
    if round_ == 1 or _kept_any(session, "llm:code", before=round_):
        report.merge(stage.propose(settings.code_per_class, kind="code"))
        if report.budget_spent:
            return report
    else:  # spend the calls where proposals survive (keywords come next)
        session.say(f"round {round_}: no LLM code LF has been kept so far; asking for keywords only")
    if settings.recall_per_class > 0:
        report.merge(stage.propose(settings.recall_per_class, kind="recall"))
    if not report.budget_spent:
        report.merge(stage.propose(settings.keyword_examples, kind="keywords"))
    if round_ == settings.concepts_in_round and not report.budget_spent:
        report.merge(stage.propose(1, kind="concepts"))
    target = _refinement_target(session)
    if target and not report.budget_spent:
        report.merge(stage.refine(target))
        session.store.set_meta(f"refined:{target}", True)  # after the call: a resumed round asks again
    return report


def _kept_any(session, source: str, *, before: int) -> bool:
    """Whether an LF from `source` proposed before round `before` is kept now."""
    return any(status == "kept" and lf.provenance.source.startswith(source) and (lf.provenance.round or 0) < before
               for lf, status, *_ in session.store.lfs())


def _refinement_target(session) -> str | None:
    """The LLM-written LF with the most seed mistakes that still has some merit (its best is worth fixing)."""
    candidates = [row for row in session.lfs
                  if row["source"].startswith("llm:code") and row["seed_votes"] and row["seed_accuracy"] is not None
                  and row["seed_accuracy"] < 0.95 and not session.store.get_meta(f"refined:{row['name']}")]
    if not candidates:
        return None
    best = max(candidates, key=lambda row: (row["seed_votes"] * (1 - row["seed_accuracy"]), row["name"]))
    return best["name"]


def _plateaued(history: list[float], settings: LoopSettings) -> bool:
    if len(history) <= settings.plateau_rounds:
        return False
    best_before = max(history[: -settings.plateau_rounds])
    return max(history[-settings.plateau_rounds:]) < best_before + settings.min_improvement
