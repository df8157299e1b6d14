"""Concept-extraction LFs (after "From scratch to silver").

The LLM reads seed examples of one class and extracts structured concepts (intent, key entities, topic
phrases). The phrases are embedded; a record votes that class when its similarity to the class's concept
phrases ranks high enough. The threshold is fitted on the seeds: the lowest similarity at which the
seeds ranked above it are still mostly of that class.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from lfagent.lf import LabelingFunction, Provenance
from lfagent.llm.base import ChatMessage, ChatRequest
from lfagent.propose.mined import choose_threshold
from lfagent.propose.parse import ProposalRejected, extract_json
from lfagent.propose.prompting import PromptContext, render, system_prompt


class Concepts(BaseModel):
    """The per-task concept schema: what makes a text belong to one class."""

    class_name: str = Field(alias="class")
    intent: str = ""
    entities: list[str] = Field(default_factory=list, max_length=20)
    topic_phrases: list[str] = Field(default_factory=list, max_length=20)

    def phrases(self) -> list[str]:
        items = [self.intent, *self.entities, *self.topic_phrases]
        return list(dict.fromkeys(" ".join(str(p).split())[:120] for p in items if str(p).strip()))


def request_schema() -> dict:
    """The schema sent with the request: fewer and shorter items than `Concepts` accepts. A server that
    constrains output to it (llama.cpp, vLLM) stops a small model's rambling intent or 20-phrase lists,
    which otherwise run into max_tokens and leave invalid JSON (seen with the 0.5B model)."""
    schema = Concepts.model_json_schema(by_alias=True)
    properties = schema["properties"]
    properties["intent"]["maxLength"] = 100
    for name, length in (("entities", 40), ("topic_phrases", 60)):
        properties[name].update(maxItems=6, items={"type": "string", "maxLength": length})
    schema["required"] = ["class", "intent", "entities", "topic_phrases"]
    return schema


def concept_request(context: PromptContext, target: str, *, sample: int = 0, max_tokens: int = 300) -> ChatRequest:
    prompt = render("concepts", context, target, examples=context.render_examples(only=target))
    return ChatRequest(messages=[ChatMessage(role="system", content=system_prompt()),
                                 ChatMessage(role="user", content=prompt)],
                       temperature=0.3, max_tokens=max_tokens, json_schema=request_schema(), seed=sample)


def parse_concepts(reply: str, target: str) -> Concepts:
    data = extract_json(reply)
    if isinstance(data, dict):
        data.setdefault("class", target)
    try:
        concepts = Concepts.model_validate(data)
    except ValidationError as exc:
        raise ProposalRejected(f"JSON does not match the concept schema: {exc.errors()[0]['msg']}") from None
    if len(concepts.phrases()) < 2:
        raise ProposalRejected("fewer than two concept phrases")
    return concepts


def concept_lf(concepts: Concepts, target: str, phrase_emb: np.ndarray, seed_emb: np.ndarray,
               seed_members: np.ndarray, *, round_: int, model: str, target_precision: float = 0.8,
               ) -> LabelingFunction:
    """Embedding LF over the concept phrases with a seed-fitted threshold (ProposalRejected if none works)."""
    threshold, goal = fit_concept_threshold(phrase_emb, seed_emb, seed_members, target_precision)
    if threshold is None:
        raise ProposalRejected(f"no similarity threshold reaches seed precision {goal:.2f} for {target}")
    digest = hashlib.sha1("|".join(concepts.phrases()).encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "_", target.lower()).strip("_")[:20]
    return LabelingFunction(
        name=f"llm_concept_{slug}_{digest}", kind="embedding", label=target,
        prototypes=np.round(phrase_emb, 6).tolist(), threshold=threshold,
        provenance=Provenance(source="llm:concepts", detail=model, round=round_),
        description="concepts: " + "; ".join(concepts.phrases()[:6]))


def fit_concept_threshold(phrase_emb: np.ndarray, seed_emb: np.ndarray, seed_members: np.ndarray,
                          target_precision: float = 0.8) -> tuple[float | None, float]:
    """(threshold, precision goal): the lowest similarity whose seeds above it are mostly the class.

    With no seed of the class every seed is a counter-example: the threshold is just above the most
    similar seed (a margin over the rounding of stored prototypes), so the LF votes only records closer to
    the class's concepts than any seed is."""
    sims = (seed_emb @ np.asarray(phrase_emb).T).max(axis=1)
    if len(sims) and not np.asarray(seed_members, bool).any():
        return float(sims.max()) + 1e-4, 1.0
    prior = float(np.mean(seed_members))
    goal = max(target_precision, prior + (1 - prior) / 2)
    return choose_threshold(sims, np.asarray(seed_members, bool), target_precision=goal), goal


def refit_concept_lf(lf: LabelingFunction, seed_emb: np.ndarray, seed_members: np.ndarray) -> LabelingFunction | None:
    """The concept LF with its threshold chosen on these seeds only (None if none works).

    Cross-fitting calls this with each fold's training seeds, so a concept LF is scored on held-out
    seeds that did not pick its threshold (as the mined embedding LFs are).
    """
    threshold, _ = fit_concept_threshold(np.asarray(lf.prototypes), seed_emb, seed_members)
    return None if threshold is None else lf.model_copy(update={"threshold": threshold})
