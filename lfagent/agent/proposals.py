"""The LLM's side of a round: prompts built from the run's state, proposals admitted as candidates.

A `ProposalStage` is made per round by the loop (or by `Session.propose` for the REPL); the round it
belongs to is its argument, and every LLM call it makes is recorded under that round.
"""
from __future__ import annotations

import numpy as np

from lfagent.errors import InputError

DUPLICATE = "duplicate of an existing LF"


class ProposalStage:
    def __init__(self, session, round_: int = 0):
        self.session = session
        self.round = round_

    @property
    def store(self):
        return self.session.store

    def _proposer(self):
        from lfagent.propose.llm_proposer import LLMProposer

        session = self.session
        if session.llm is None:
            raise InputError("this session has no LLM (--llm none); start it with --llm local or openai:MODEL")
        session.llm_round = self.round
        embed = session.embedder.encode if session.uses_embeddings else None
        return LLMProposer(session.llm, class_names=session.task.class_names, embed=embed,
                           seed_emb=session.corpus.seed_emb, seed_members=session.seed_members(),
                           progress=session.say)

    def prompt_context(self):
        from lfagent.propose.prompting import PromptContext, choose_examples, typical_examples

        session, task = self.session, self.session.task
        result = session.result
        seeds = session.seeds
        examples = choose_examples(seeds.texts, seeds.y, task.class_names,
                                   heldout=None if result is None else result.heldout_probs,
                                   covered=None if result is None else self._seed_covered(),
                                   per_class=4, seed=session.config.seed + self.round, multi_label=task.multi_label)
        current = []
        covered: dict[str, list[str]] = {}
        if result is not None:
            by_name = {lf.name: lf for lf, *_ in self.store.lfs()}  # one read, not one per kept LF
            for row in session.lfs:
                if row["status"] == "kept":
                    lf = by_name[row["name"]]
                    current.append(f"{row['name']}: {lf.summary()} (seed accuracy {row['seed_accuracy']})")
                    if lf.label and lf.kind in ("keywords", "regex"):
                        covered.setdefault(lf.label, []).extend(lf.keywords if lf.kind == "keywords"
                                                                 else [f"/{lf.pattern}/"])
        typical = typical_examples(seeds.texts, seeds.y, task.class_names, per_class=4,
                                   seed=session.config.seed + 1000 * self.round, multi_label=task.multi_label)
        return PromptContext(task=task, examples=examples, guideline=self.store.get_meta("guideline", ""),
                             current_lfs=current, round=self.round, typical=typical, covered=covered)

    def _seed_covered(self) -> np.ndarray:
        L_seed, _ = self.session.votes.matrices(self.session.result.final.lfs)
        return (L_seed != -1).any(axis=1) if L_seed.shape[1] else np.zeros(len(self.session.seeds), bool)

    def write_guideline(self) -> str | None:
        """Ask the LLM for a labeling guideline once; later prompts reuse the lines worth reusing
        (propose/guideline.py). The dropped lines and why are in the run store's events."""
        from lfagent.propose.guideline import clean_guideline

        stored = self.store.get_meta("guideline")
        if stored is not None:
            return stored
        written, cut = self._proposer().guideline(self.prompt_context())
        if written is None:
            return None
        task, names = self.session.task, self.session.task.class_names
        seed_classes = [{names[c] for c in np.flatnonzero(row)} for row in self.session.seed_members()]
        text, dropped = clean_guideline(
            written, classes=[(c.name, c.description) for c in task.classes], seed_texts=self.session.seeds.texts,
            seed_classes=seed_classes, cut=cut)
        self.store.set_meta("guideline", text)
        self.store.event("guideline", {"kept": text, "dropped": [{"line": line, "reason": why} for line, why in dropped]})
        if dropped:
            self.session.say(f"guideline: {len(dropped)} of its lines dropped ({dropped[0][1]}, ...); "
                             f"{len(text.splitlines())} kept")
        return text

    def propose(self, n: int = 1, *, kind: str = "code", class_name: str | None = None):
        """Ask the LLM for LFs; new ones become candidates, rejections are recorded with their reason."""
        names = self.session.task.class_names
        if class_name is not None and class_name not in names:
            raise InputError(f"unknown class {class_name!r}; classes are {names}")
        targets = [class_name] if class_name else names
        offset = self.store.get_meta("samples_drawn", 0)
        report = self._proposer().propose(kind, self.prompt_context(), n=n, targets=targets, round_=self.round,
                                          sample_offset=offset)
        self.store.set_meta("samples_drawn", offset + n)
        return self._admit(report, kind)

    def refine(self, name: str):
        """Show an LF its false positives and misses on the seeds and ask for a better version."""
        from lfagent.scoring import seed_errors

        session = self.session
        lf = session.get_lf(name)
        L_seed, _ = session.votes.matrices([lf])
        label = session.task.class_names.index(lf.label) if lf.label else None
        fp, fn = seed_errors(L_seed, session.seeds.y, 0, label=label, cardinality=session.task.cardinality)
        texts = session.seeds.texts
        report = self._proposer().refine(lf, self.prompt_context(), [texts[i] for i in fp], [texts[i] for i in fn],
                                         round_=self.round)
        return self._admit(report, "refine")

    def _admit(self, report, proposer: str):
        store, round_ = self.store, self.round
        known = {lf.fingerprint for lf, *_ in store.lfs()}
        admitted = []
        for lf in report.added:
            if lf.fingerprint in known or store.has_lf(lf.name):
                store.reject(DUPLICATE, round_=round_, proposer=proposer, name=lf.name)
                report.rejected.append((lf.name, DUPLICATE))
                continue
            known.add(lf.fingerprint)
            self.session.add_lf(lf, round_=round_)
            admitted.append(lf)
        for what, reason in report.rejected:
            if reason != DUPLICATE:
                store.reject(reason, round_=round_, proposer=proposer, name=what)
        for failure in report.failures:
            store.reject(f"LLM call failed: {failure}", round_=round_, proposer=proposer)
        report.added = admitted
        return report
