"""`lfagent.Session`: the Python face of a run. The CLI and the REPL are thin layers over it.

    s = Session("examples/youtube-spam/task.yaml", run_dir="runs/yt", llm="none")
    s.fit()                 # mine, score, select, fit the label model (cross-fitted figures)
    s.lfs                   # summary table (list of dicts)
    s.drop("kw_spam_song"); s.fit()
    s.evaluate()            # cross-fitted seed figures, and test-set figures when the task has `test`
    s.write_outputs()       # silver.jsonl, lfs.json/lfs.txt, metrics.json, model.json
    s.export("my_lfs.py")   # kept LFs as an editable Python module
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lfagent.crossfit import Metrics, PipelineResult, run_pipeline
from lfagent.data.dataset import Records, load_records, load_seeds, load_unlabeled
from lfagent.errors import InputError
from lfagent.lf import LabelingFunction
from lfagent.pipeline import Corpus, PipelineConfig, VoteCache
from lfagent.store import RunStore
from lfagent.task import TaskSpec, load_task


def default_cache_dir() -> Path:
    return Path(os.environ.get("LFAGENT_CACHE", Path.home() / ".cache" / "lfagent"))


class Session:
    def __init__(self, task: TaskSpec | str | Path, run_dir: str | Path | None = None, *, llm="none",
                 config: PipelineConfig | None = None, progress=None, pool=None, embed: bool = True):
        self.task = task if isinstance(task, TaskSpec) else load_task(task)
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / self.task.name
        self.store = RunStore(self.run_dir)
        self.config = config or PipelineConfig(**(self.store.get_meta("config") or {}))
        self.store.set_meta("config", self.config.model_dump())
        self.store.set_meta("task", {**self.task.model_dump(mode="json"), "base_dir": str(self.task.base_dir)})
        self.say = progress or (lambda message: None)
        self._pool = pool
        self._own_pool = False
        self._embed = embed
        self.llm_spec = llm or "auto"
        self._llm = None
        self.limits: dict = {}
        self.prices: tuple[float, float] = (0.0, 0.0)  # USD per 1M prompt / completion tokens
        self.round = 0
        self.result: PipelineResult | None = None
        self.seeds: Records = load_seeds(self.task)
        self.unlabeled: Records = load_unlabeled(self.task)
        self.corpus = self._build_corpus()
        self.votes = VoteCache(self.corpus, lambda: self.pool, progress=self.say)

    # -- data
    def _build_corpus(self) -> Corpus:
        seed_emb = unl_emb = class_emb = embed = None
        if self._embed:
            from lfagent.embed import Embedder

            from lfagent.counting import counter, reporter

            embedder = Embedder(default_cache_dir() / "embeddings.sqlite")
            with counter(self.say, "embedding (all-MiniLM-L6-v2)", len(self.seeds) + len(self.unlabeled)) as count:
                seed_emb = embedder.encode(self.seeds.texts, progress=reporter(count))
                unl_emb = embedder.encode(self.unlabeled.texts, progress=reporter(count))
            self.embedder, embed = embedder, embedder.encode
            if all(c.description.strip() for c in self.task.classes):  # vouching by meaning needs them all
                class_emb = embedder.encode([f"{c.name}: {c.description}" for c in self.task.classes])
        return Corpus(class_names=self.task.class_names, multi_label=self.task.multi_label,
                      seed_texts=self.seeds.texts, seed_y=self.seeds.y, unl_texts=self.unlabeled.texts,
                      seed_emb=seed_emb, unl_emb=unl_emb, seed_rows=self.seeds.rows, unl_rows=self.unlabeled.rows,
                      class_emb=class_emb, embed=embed)

    def _pool_for(self, lfs: list[LabelingFunction]):
        from lfagent.apply import is_trusted

        return None if all(is_trusted(lf) for lf in lfs) else self.pool

    @property
    def pool(self):
        if self._pool is None:
            from lfagent.sandbox import SandboxPool

            self._pool = SandboxPool(workers=2)
            self._own_pool = True
        return self._pool

    # -- LFs
    def add_lf(self, lf: LabelingFunction, *, round_: int | None = None) -> None:
        """Add an LF from outside the miners (user, LLM). It competes in selection unless pinned."""
        self.store.put_lf(lf, status="candidate", round_=round_)

    def external_lfs(self) -> list[LabelingFunction]:
        return [lf for lf, _, pinned, _ in self.store.lfs()
                if not lf.provenance.source.startswith("mined") or pinned == "keep"]

    def _pins(self) -> dict[str, str]:
        return {lf.name: pinned for lf, _, pinned, _ in self.store.lfs() if pinned}

    def update_lf(self, lf: LabelingFunction) -> None:
        """Replace an LF by an edited version (same name); code is linted, then re-scored at the next fit."""
        self._require_lf(lf.name)
        if lf.kind == "code":
            from lfagent.sandbox.lint import check_code_lf

            check_code_lf(lf.name, lf.source)  # raises LFRejected with the reason
        self.store.put_lf(lf)
        self.store.set_lf_status(lf.name, "candidate", "edited")
        self.store.event("edit", {"name": lf.name})

    def keep(self, name: str) -> None:
        self._require_lf(name)
        self.store.pin(name, "keep")

    def drop(self, name: str) -> None:
        self._require_lf(name)
        self.store.pin(name, "drop")

    def _require_lf(self, name: str) -> None:
        if not self.store.has_lf(name):
            raise InputError(f"no LF named {name!r}; `lfs` lists them")

    # -- the LLM
    @property
    def llm(self):
        """The LLM backend, built on first use; every response is kept in the run store."""
        if self._llm is None and self.llm_spec != "none":
            from lfagent.llm.budget import Budget
            from lfagent.llm.cache import ResponseCache
            from lfagent.llm.factory import make_llm

            from lfagent.llm.budget import Prices

            prompt_price, completion_price = self.prices
            budget = Budget(max_calls=self.limits.get("max_llm_calls"), max_tokens=self.limits.get("max_tokens"),
                            prices=Prices(prompt_per_million=prompt_price, completion_per_million=completion_price))
            budget.add_prior_usage(**self.store.llm_usage())
            self._llm = make_llm(self.llm_spec, cache=ResponseCache(self.run_dir / "llm_cache.sqlite"),
                                 budget=budget, on_response=self._record_llm_call)
        return self._llm

    def _record_llm_call(self, request, response) -> None:
        from lfagent.llm.base import canonical_request_key

        if response.cached:
            return
        cost = self._llm.budget.prices.cost(response.prompt_tokens, response.completion_tokens) if self._llm else 0.0
        self.store.put_llm_call(canonical_request_key(request, "run"), round_=self.round, purpose="propose",
                                request=request.model_dump(mode="json"), response=response.model_dump(mode="json"),
                                prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
                                cost=cost)

    def _proposer(self):
        from lfagent.propose.llm_proposer import LLMProposer

        if self.llm is None:
            raise InputError("this session has no LLM (--llm none); start it with --llm local or openai:MODEL")
        embed = self.embedder.encode if self._embed else None
        return LLMProposer(self.llm, class_names=self.task.class_names, embed=embed, seed_emb=self.corpus.seed_emb,
                           seed_members=self._seed_members(), progress=self.say)

    def prompt_context(self):
        from lfagent.propose.prompting import PromptContext, choose_examples, typical_examples

        result = self.result
        examples = choose_examples(self.seeds.texts, self.seeds.y, self.task.class_names,
                                   heldout=None if result is None else result.heldout_probs,
                                   covered=None if result is None else self._seed_covered(),
                                   per_class=4, seed=self.config.seed + self.round, multi_label=self.task.multi_label)
        current = []
        if result is not None:
            by_name = {lf.name: lf for lf, *_ in self.store.lfs()}  # one read, not one per kept LF
            for row in self.lfs:
                if row["status"] == "kept":
                    current.append(f"{row['name']}: {by_name[row['name']].summary()} "
                                   f"(seed accuracy {row['seed_accuracy']})")
        typical = typical_examples(self.seeds.texts, self.seeds.y, self.task.class_names, per_class=4,
                                   seed=self.config.seed + 1000 * self.round, multi_label=self.task.multi_label)
        return PromptContext(task=self.task, examples=examples, guideline=self.store.get_meta("guideline", ""),
                             current_lfs=current, round=self.round, typical=typical)

    def _seed_covered(self) -> np.ndarray:
        L_seed, _ = self.votes.matrices(self.result.final.lfs)
        return (L_seed != -1).any(axis=1) if L_seed.shape[1] else np.zeros(len(self.seeds), bool)

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
        text, dropped = clean_guideline(
            written, classes=[(c.name, c.description) for c in self.task.classes], seed_texts=self.seeds.texts,
            seed_classes=self._seed_class_sets(), cut=cut)
        self.store.set_meta("guideline", text)
        self.store.event("guideline", {"kept": text, "dropped": [{"line": line, "reason": why} for line, why in dropped]})
        if dropped:
            self.say(f"guideline: {len(dropped)} of its lines dropped ({dropped[0][1]}, ...); "
                     f"{len(text.splitlines())} kept")
        return text

    def _seed_members(self) -> np.ndarray:
        """n_seed x k bool: is seed i of class c."""
        return (np.asarray(self.seeds.y, bool) if self.task.multi_label
                else np.eye(self.task.cardinality, dtype=bool)[self.seeds.y])

    def _seed_class_sets(self) -> list[set[str]]:
        names = self.task.class_names
        return [{names[c] for c in np.flatnonzero(row)} for row in self._seed_members()]

    def propose(self, n: int = 1, *, kind: str = "code", class_name: str | None = None):
        """Ask the LLM for LFs; new ones become candidates, rejections are recorded with their reason."""
        if class_name is not None and class_name not in self.task.class_names:
            raise InputError(f"unknown class {class_name!r}; classes are {self.task.class_names}")
        targets = [class_name] if class_name else self.task.class_names
        offset = self.store.get_meta("samples_drawn", 0)
        report = self._proposer().propose(kind, self.prompt_context(), n=n, targets=targets, round_=self.round,
                                          sample_offset=offset)
        self.store.set_meta("samples_drawn", offset + n)
        return self._admit(report, kind)

    def refine(self, name: str):
        """Show an LF its false positives and misses on the seeds and ask for a better version."""
        from lfagent.scoring import seed_errors

        lf = self.get_lf(name)
        L_seed, _ = self.votes.matrices([lf])
        label = self.task.class_names.index(lf.label) if lf.label else None
        fp, fn = seed_errors(L_seed, self.seeds.y, 0, label=label, cardinality=self.task.cardinality)
        texts = self.seeds.texts
        report = self._proposer().refine(lf, self.prompt_context(), [texts[i] for i in fp], [texts[i] for i in fn],
                                         round_=self.round)
        return self._admit(report, "refine")

    def _admit(self, report, proposer: str):
        known = {lf.fingerprint for lf, *_ in self.store.lfs()}
        admitted = []
        for lf in report.added:
            if lf.fingerprint in known or self.store.has_lf(lf.name):
                self.store.reject("duplicate of an existing LF", round_=self.round, proposer=proposer, name=lf.name)
                report.rejected.append((lf.name, "duplicate of an existing LF"))
                continue
            known.add(lf.fingerprint)
            self.add_lf(lf, round_=self.round)
            admitted.append(lf)
        for what, reason in report.rejected:
            if reason != "duplicate of an existing LF":
                self.store.reject(reason, round_=self.round, proposer=proposer, name=what)
        for failure in report.failures:
            self.store.reject(f"LLM call failed: {failure}", round_=self.round, proposer=proposer)
        report.added = admitted
        return report

    # -- fitting
    def fit(self) -> Metrics:
        self.result = run_pipeline(self.corpus, self.config, extra=self.external_lfs(), pins=self._pins(),
                                   votes=self.votes, progress=self.say)
        self._record_lfs()
        return self.result.metrics

    def _record_lfs(self) -> None:
        kept = {lf.name for lf in self.result.final.lfs}
        for lf in self.result.final.candidates:
            if not self.store.has_lf(lf.name):
                self.store.put_lf(lf, status="candidate")
            status = "kept" if lf.name in kept else "dropped"
            self.store.set_lf_status(lf.name, status, self.result.final.reason(lf.name))
        screened = self.store.get_meta("screened_out", {})
        for name, pin in self._pins().items():
            if pin == "drop":
                self.store.set_lf_status(name, "dropped", screened.get(name, "dropped by hand"))
        self.store.event("fit", self.result.metrics.model_dump())

    def _fitted(self) -> PipelineResult:
        if self.result is None:
            self.fit()
        return self.result

    # -- looking at it
    @property
    def lfs(self) -> list[dict]:
        """One row per LF: name, kind, class, coverage, seed accuracy with its interval, status."""
        from lfagent.scoring import lf_stats

        entries = self.store.lfs()
        if not entries:
            return []
        lfs = [lf for lf, *_ in entries]
        L_seed, L_unl = self.votes.matrices(lfs) if self.result else (None, None)
        stats = {}
        if L_seed is not None:
            labels = [self.task.class_names.index(lf.label) if lf.label else -1 for lf in lfs]
            for s in lf_stats(L_seed, self.corpus.seed_y, L_unl, cardinality=self.task.cardinality,
                              names=[lf.name for lf in lfs], lf_labels=labels):
                stats[s.name] = s
        rows = []
        for lf, status, pinned, reason in entries:
            s = stats.get(lf.name)
            rows.append({"name": lf.name, "kind": lf.kind, "class": lf.label or "any", "source": lf.provenance.source,
                         "coverage": None if s is None else round(s.coverage, 4),
                         "seed_votes": None if s is None else s.seed_votes,
                         "seed_accuracy": None if s is None or s.seed_accuracy is None else round(s.seed_accuracy, 3),
                         "ci": None if s is None else [round(s.ci_low, 3), round(s.ci_high, 3)],
                         "status": status, "pinned": pinned, "reason": reason})
        return rows

    def get_lf(self, name: str) -> LabelingFunction:
        for lf, *_ in self.store.lfs():
            if lf.name == name:
                return lf
        raise InputError(f"no LF named {name!r}; `lfs` lists them")

    def label_text(self, text: str) -> dict:
        """Each kept LF's vote on one text and the calibrated probabilities."""
        from lfagent.apply import apply_lfs

        result = self._fitted()
        emb = self.embedder.encode([text]) if self._embed else None
        kept = result.final.lfs
        outcome = apply_lfs(kept, [text], self.task.class_names, embeddings=emb, pool=self._pool_for(kept))
        raw, covered = result.final.predict(outcome.L, emb)
        probs = result.calibrator.transform(raw)[0]
        votes = {lf.name: (self.task.class_names[v] if v >= 0 else None) for lf, v in zip(kept, outcome.L[0])}
        return {"votes": votes, "probs": dict(zip(self.task.class_names, map(float, probs))),
                "covered": bool(covered[0])}

    def evaluate(self) -> dict:
        """Cross-fitted seed figures; with a `test` file in the task, figures on it too (never fitted on)."""
        result = self._fitted()
        report = {"cross_fitted_seeds": result.metrics.model_dump()}
        if self.task.test:
            report["test"] = self._test_metrics(load_records(self.task, self.task.test, labeled=True))
        return report

    def _test_metrics(self, test: Records) -> dict:
        from lfagent.aggregate import expected_calibration_error
        from lfagent.apply import apply_lfs
        from lfagent.crossfit import multilabel_f1

        result = self.result
        emb = self.embedder.encode(test.texts) if self._embed else None
        outcome = apply_lfs(result.final.lfs, test.texts, self.task.class_names, rows=test.rows, embeddings=emb,
                            pool=self._pool_for(result.final.lfs))
        raw, covered = result.final.predict(outcome.L, emb)
        probs = result.calibrator.transform(raw)
        if self.task.multi_label:
            micro, macro = multilabel_f1(test.y, probs >= 0.5)
            return {"n": len(test), "micro_f1": micro, "macro_f1": macro, "coverage": float(covered.mean())}
        pred = probs.argmax(axis=1)
        metrics = {"n": len(test), "accuracy": float((pred == test.y).mean()), "coverage": float(covered.mean()),
                   "ece": float(expected_calibration_error(probs, test.y))}
        if self.task.cardinality == 2:
            tp = int(((pred == 1) & (test.y == 1)).sum())
            metrics[f"f1_{self.task.class_names[1]}"] = 2 * tp / max(int((pred == 1).sum() + (test.y == 1).sum()), 1)
        return metrics

    # -- writing it out
    def write_outputs(self) -> Path:
        from lfagent.outputs import write_run_outputs

        result = self._fitted()
        write_run_outputs(self.run_dir, self.task, self.store.run_id, self.seeds, self.unlabeled, result,
                          uses_embeddings=self._embed)
        return self.run_dir / "silver.jsonl"

    def export(self, path: str | Path) -> Path:
        from lfagent.export import write_lf_module

        return write_lf_module(Path(path), self._fitted().final.lfs, task=self.task, run_id=self.store.run_id)

    def close(self) -> None:
        if self._own_pool and self._pool is not None:
            self._pool.close()
        if self._llm is not None:
            self._llm.close()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
