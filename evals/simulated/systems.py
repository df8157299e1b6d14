"""The simulated-LLM systems of `python -m evals`; each starts its own server for the draw and stops it after.

- lfagent-expert    lfagent run with `--llm openai:simulated-expert`, its openai backend pointed at the server
                    (with an openai model, lfagent's default --annotate: the expert labels a few hundred records)
- lfagent-expert-noannotate  the same with --annotate 0: what the LLM's LFs alone add
- lfagent-liar      the same with the liar (every proposal and every record label wrong)
- lfagent-expert-tenth  the expert with a tenth of expert-label-all's calls (`--max-llm-calls`), and asked to
                    label every record (`--annotate`) after round 1, twenty records a request (`--annotate-batch
                    20`): with the seeds that is about half the budget, and round 2 has the rest
- lfagent-expert+end (any lfagent-* above with +end)  the end model `lfagent train` fine-tunes on that run's
                    silver labels, scored as the system's labels
- expert-label-all  the expert labels every record lfagent labels (the test rows and the draw's other
                    unlabeled rows), one call per record (autolabel's way): the reference a user with a strong
                    model would weigh lfagent against, with its calls; scored on the test rows
"""
from __future__ import annotations

import dataclasses

from evals.metrics import SystemOutput
from evals.simulated.knowledge import knowledge_for_draw
from evals.simulated.persona import PERSONAS
from evals.simulated.server import SimulatedLLMServer

TENTH_BATCH = 20  # records a labelling request for lfagent-expert-tenth
SIMULATED_SYSTEMS = {"lfagent-expert": "expert", "lfagent-expert-noannotate": "expert", "lfagent-liar": "liar",
                     "expert-label-all": "expert", "lfagent-expert-tenth": "expert"}


def is_simulated(system: str) -> bool:
    """Whether `system` is one of the simulated systems, with +end after an lfagent one; ValueError for any
    other variant of them (the simulated server would otherwise be taken for an --llm named after it)."""
    base, _, variant = system.partition("+")
    if base not in SIMULATED_SYSTEMS:
        return False
    if variant and (variant != "end" or not base.startswith("lfagent-")):
        raise ValueError(f"unknown variant {variant!r} in {system!r}: a simulated lfagent system takes only +end")
    return True


def run_simulated(system: str, ctx) -> SystemOutput:
    from evals.systems import run_lfagent, run_zeroshot

    system, _, variant = system.partition("+")
    end = variant == "end"
    persona = PERSONAS[SIMULATED_SYSTEMS[system]]
    with SimulatedLLMServer(knowledge_for_draw(ctx.data, ctx.draw), persona) as server, server.environment():
        if system == "expert-label-all":
            # The zero-shot prompt, one record per call, every record; no cache shared across draws.
            out = run_zeroshot(dataclasses.replace(ctx, llm=server.llm_spec, llm_cache=None, zeroshot_limit=None),
                               every_record=True)
        elif system == "lfagent-expert-tenth":
            records = len(ctx.data.test) + len(ctx.draw.extra_rows)  # expert-label-all's calls
            out = run_lfagent(dataclasses.replace(ctx, max_llm_calls=records // 10), server.llm_spec, annotate=records,
                              annotate_batch=TENTH_BATCH, end=end)
        else:
            out = run_lfagent(ctx, server.llm_spec, annotate=0 if system.endswith("-noannotate") else None, end=end)
        stats = server.stats
    out.extra = {**out.extra, "simulated": stats}
    return out
