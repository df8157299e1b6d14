"""Asks the LLM for LFs of each kind, turns replies into candidates, and records every rejection.

LLM output is untrusted: a malformed, hostile, truncated or duplicate proposal is rejected with a reason
and the caller goes on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lfagent.lf import LabelingFunction, text_key
from lfagent.llm.base import ChatMessage, ChatRequest, LLMFailure
from lfagent.propose.llm_code import REFINE_SHOWN, code_request, parse_code_reply, refine_request
from lfagent.propose.llm_concepts import concept_lf, concept_request, parse_concepts
from lfagent.propose.llm_keywords import keyword_request, parse_keyword_reply
from lfagent.propose.llm_recall import parse_recall_reply, recall_request
from lfagent.propose.parse import ProposalRejected
from lfagent.propose.prompting import PromptContext, render, system_prompt

KINDS = ("code", "keywords", "recall", "concepts")
CUT_REPLY = "reply cut at max_tokens"  # the failure a reply that hit max_tokens records


@dataclass
class ProposalReport:
    added: list[LabelingFunction] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (what, reason)
    failures: list[str] = field(default_factory=list)  # LLM calls that failed (after retries)
    budget_spent: bool = False

    def merge(self, other: "ProposalReport") -> "ProposalReport":
        self.added += other.added
        self.rejected += other.rejected
        self.failures += other.failures
        self.budget_spent = self.budget_spent or other.budget_spent
        return self


class LLMProposer:
    def __init__(self, llm, *, class_names: list[str], embed=None, seed_emb=None, seed_members=None, progress=None):
        self.llm = llm
        self.progress = progress  # counts calls as they end (lfagent/counting.py)
        self.class_names = class_names
        self.embed = embed  # callable texts -> normalised embeddings (concepts need it)
        self.seed_emb = seed_emb
        self.seed_members = seed_members  # n_seed x k bool
        self.model = getattr(llm, "model", "") or "llm"

    def _ask(self, requests: list[ChatRequest], report: ProposalReport) -> list[str | None]:
        if not requests:
            return []
        from lfagent.counting import counter

        with counter(self.progress, "LLM calls", len(requests), unit="calls") as count:
            replies = self.llm.chat_many(requests, on_done=count.advance)
        texts = []
        for reply in replies:
            if isinstance(reply, LLMFailure):
                report.failures.append(f"{reply.kind}: {reply.message}")
                report.budget_spent = report.budget_spent or reply.kind == "budget"
                texts.append(None)
            else:
                if reply.finish_reason == "length":
                    report.failures.append(CUT_REPLY)
                texts.append(reply.text)
        return texts

    def guideline(self, context: PromptContext) -> tuple[str | None, bool]:
        """(the guideline as written, or None if the call failed; whether it was cut at max_tokens)."""
        report = ProposalReport()
        (text,) = self._ask([guideline_request(context)], report)
        return (text.strip()[:2000] if text else None), CUT_REPLY in report.failures

    def propose(self, kind: str, context: PromptContext, *, n: int, targets: list[str], round_: int,
                sample_offset: int = 0) -> ProposalReport:
        if kind == "code":
            return self._code(context, n=n, targets=targets, round_=round_, offset=sample_offset)
        if kind == "keywords":
            return self._keywords(context, n=n, targets=targets, round_=round_, offset=sample_offset)
        if kind == "recall":
            return self._recall(context, n=n, targets=targets, round_=round_, offset=sample_offset)
        if kind == "concepts":
            return self._concepts(context, targets=targets, round_=round_, offset=sample_offset)
        raise ValueError(f"unknown proposal kind {kind!r}; expected one of {KINDS}")

    def _code(self, context, *, n, targets, round_, offset) -> ProposalReport:
        report = ProposalReport()
        jobs = [(t, offset + i) for i in range(n) for t in targets]
        replies = self._ask([code_request(context, t, sample=s) for t, s in jobs], report)
        for (target, _), text in zip(jobs, replies):
            if text is None:
                continue
            try:
                lf = parse_code_reply(text, target=target, class_names=self.class_names, round_=round_,
                                      model=self.model)
                report.added.append(with_shown(lf, [t for texts in context.examples.values() for t in texts]))
            except ProposalRejected as exc:
                report.rejected.append((f"code LF for {target}", exc.reason))
        return report

    def refine(self, lf: LabelingFunction, context: PromptContext, false_positives: list[str],
               false_negatives: list[str], *, round_: int) -> ProposalReport:
        report = ProposalReport()
        (text,) = self._ask([refine_request(context, lf, false_positives, false_negatives, sample=round_)], report)
        if text is not None:
            try:
                better = parse_code_reply(text, target=lf.label, class_names=self.class_names, round_=round_,
                                          model=self.model, parent=lf.name)
                # It saw the parent's prompt through the parent's code, and these seeds directly.
                listed = [*false_positives[:REFINE_SHOWN], *false_negatives[:REFINE_SHOWN]]
                report.added.append(with_shown(better, listed, also=lf.provenance.shown))
            except ProposalRejected as exc:
                report.rejected.append((f"refinement of {lf.name}", exc.reason))
        return report

    def _keywords(self, context, *, n, targets, round_, offset) -> ProposalReport:
        """`n` typical seed texts per class, one request each; one request from the description alone for
        a class without seeds (its keywords cannot be copied, so they are not checked against a text)."""
        report = ProposalReport()
        source = context.typical or context.examples
        jobs = [(t, example) for t in targets for example in (source.get(t) or [None])[:max(1, n)]]
        replies = self._ask([keyword_request(context, t, example, sample=offset) for t, example in jobs], report)
        for (target, example), text in zip(jobs, replies):
            if text is None:
                continue
            try:
                lfs, rejected = parse_keyword_reply(text, class_names=self.class_names, round_=round_, model=self.model,
                                                    target=target, source_text=example)
                report.added += [with_shown(lf, [example] if example is not None else []) for lf in lfs]
                report.rejected += [("keyword", reason) for reason in rejected]
            except ProposalRejected as exc:
                report.rejected.append(("keyword reply", exc.reason))
        return report

    def _recall(self, context, *, n, targets, round_, offset) -> ProposalReport:
        """`n` recall requests per class (llm_recall.py): cues the model knows, beyond those the kept LFs cover.
        No seed text is shown, so no seed vote of what it recalls is set aside when it is judged."""
        report = ProposalReport()
        jobs = [(t, offset + i) for i in range(max(1, n)) for t in targets]
        replies = self._ask([recall_request(context, t, sample=s) for t, s in jobs], report)
        for (target, _), text in zip(jobs, replies):
            if text is None:
                continue
            try:
                lfs, rejected = parse_recall_reply(text, target=target, class_names=self.class_names, round_=round_,
                                                   model=self.model, covered=context.covered.get(target, []))
                report.added += lfs
                report.rejected += [("recalled cue", reason) for reason in rejected]
            except ProposalRejected as exc:
                report.rejected.append((f"recall reply for {target}", exc.reason))
        return report

    def _concepts(self, context, *, targets, round_, offset) -> ProposalReport:
        report = ProposalReport()
        if self.embed is None or self.seed_emb is None:
            report.rejected.append(("concepts", "concept LFs need embeddings (run without --no-embeddings)"))
            return report
        replies = self._ask([concept_request(context, t, sample=offset) for t in targets], report)
        for target, text in zip(targets, replies):
            if text is None:
                continue
            try:
                concepts = parse_concepts(text, target)
                phrase_emb = self.embed(concepts.phrases())
                c = self.class_names.index(target)
                lf = concept_lf(concepts, target, phrase_emb, self.seed_emb, np.asarray(self.seed_members[:, c]),
                                round_=round_, model=self.model)
                report.added.append(with_shown(lf, context.examples.get(target, [])))
            except ProposalRejected as exc:
                report.rejected.append((f"concepts for {target}", exc.reason))
        return report


def guideline_request(context: PromptContext, *, max_tokens: int = 220) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="system", content=system_prompt()),
                                 ChatMessage(role="user", content=render("guideline", context))],
                       temperature=0.2, max_tokens=max_tokens, seed=0)


def with_shown(lf: LabelingFunction, texts: list[str], also: list[str] = ()) -> LabelingFunction:
    """`lf` remembering which seed texts its prompt showed (it is scored without them)."""
    keys = sorted({*also, *(text_key(t) for t in texts)})
    return lf.model_copy(update={"provenance": lf.provenance.model_copy(update={"shown": keys})})
