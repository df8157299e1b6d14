"""The agent loop: rounds of propose -> sandbox -> score -> keep -> refit, held in the run store.

With `llm="none"` it is one round of the mined proposers. Every round's metrics go to the store, so
`--resume` continues where a killed run stopped.
"""
from __future__ import annotations

from pathlib import Path

from lfagent.errors import InputError
from lfagent.rundir.files import write_json_atomic
from lfagent.fit.fold_fit import PipelineConfig
from lfagent.llm.budget import LLMLimits, Prices
from lfagent.session import Session


def run_config(*, seed: int, folds: int, expert: str | None, expert_steps: int | None) -> PipelineConfig:
    """The pipeline configuration of `lfagent run`'s flags; what they leave out keeps PipelineConfig's default."""
    return PipelineConfig(seed=seed, folds=folds, **({"expert": expert} if expert else {}),
                          **({"fewshot_max_steps": expert_steps} if expert_steps else {}))


def run_agent(task_path: Path, run_dir: Path, *, llm: str | None = None, rounds: int = 3,
              max_llm_calls: int | None = None, max_tokens: int | None = None, seed: int = 0, folds: int = 5,
              embed: bool = True, progress=None, prices: tuple[float, float] = (0.0, 0.0),
              annotate: int | None = None, expert: str | None = None, expert_steps: int | None = None,
              annotate_batch: int | None = None) -> dict:
    """Run (or, on an existing run directory, continue) the agent and write the run's outputs.

    `annotate`: records the LLM labels once (agent/annotate.py); None: agent.annotate.default_annotate.
    `annotate_batch`: records a labelling request (None: agent.annotate.BATCH_SIZE).
    `expert`: "finetuned" or "frozen" (None: $LFAGENT_EXPERT, else finetuned); `expert_steps` caps each
    fine-tune (fit/fewshot_views.py; None: PipelineConfig's cap).
    """
    from lfagent.agent.annotate import check_batch_size, default_annotate

    llm = llm or "auto"
    annotate_batch = check_batch_size(annotate_batch)
    if annotate is None:
        annotate = default_annotate(llm)
    elif annotate > 0 and llm == "none":
        raise InputError("--annotate needs an LLM: give --llm local or --llm openai:MODEL")
    if expert_steps is not None and expert_steps < 1:
        raise InputError(f"--expert-steps must be at least 1, got {expert_steps}")
    config = run_config(seed=seed, folds=folds, expert=expert, expert_steps=expert_steps)
    say = progress or (lambda message: None)
    limits = LLMLimits(max_calls=max_llm_calls, max_tokens=max_tokens,
                       prices=Prices(prompt_per_million=prices[0], completion_per_million=prices[1]))
    with Session(task_path, run_dir, llm=llm, config=config, progress=say, embed=embed, limits=limits,
                 fail_fast=True) as session:
        session.store.set_meta("llm", llm)
        session.store.set_meta("run_args", {"llm": llm, "rounds": rounds, "max_llm_calls": max_llm_calls,
                                            "max_tokens": max_tokens, "seed": seed, "folds": folds,
                                            "price_prompt": prices[0], "price_completion": prices[1],
                                            "no_embeddings": not embed, "annotate": annotate,
                                            "annotate_batch": annotate_batch,
                                            "expert": config.expert, "expert_steps": expert_steps})
        if llm != "none":
            from lfagent.agent.rounds import LoopSettings, agent_rounds

            agent_rounds(session, settings=LoopSettings(rounds=rounds, annotate=annotate,
                                                        annotate_batch=annotate_batch))
        else:
            say("mining LFs and fitting the label model")
            session.fit()
        session.write_outputs()
        report = session.evaluate()
        summary = {"run_id": session.store.run_id, "metrics": report["cross_fitted_seeds"],
                   "test": report.get("test"), "n_silver": len(session.unlabeled),
                   "llm": _usage(session.store) if llm != "none" else None,
                   "joined_expert": joined_expert(session.result.labeler)}
        write_json_atomic(Path(run_dir) / "metrics.json", {**report, "llm": summary["llm"]})
        from lfagent.report import write_run_card  # matplotlib and friends: only when a run ends

        write_run_card(run_dir)
        return summary


def joined_expert(labeler) -> str | None:
    """Which embedding expert the label model is joined with on covered rows ("fine-tuned": it has its own
    encoder; "frozen": it reads the run's embedder), or None when the label model stands alone there."""
    if labeler.expert is None or labeler.label_model is None or labeler.join != "product":
        return None
    return "fine-tuned" if labeler.expert_embedder is not None else "frozen"


def _usage(store) -> dict:
    """Calls, tokens and cost of the run's LLM, in all and by purpose (propose, annotate)."""
    return {**store.llm_usage(), "by_purpose": store.llm_usage_by_purpose()}
