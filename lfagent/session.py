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

from pathlib import Path

import numpy as np

from lfagent.fit.crossfit import Metrics, PipelineResult, run_pipeline
from lfagent.data.dataset import Records, load_records, load_seeds, load_unlabeled, unseeded_classes
from lfagent.errors import InputError
from lfagent.llm.budget import LLMLimits
from lfagent.lf import LabelingFunction
from lfagent.fit.corpus import Corpus, VoteCache
from lfagent.fit.fold_fit import PipelineConfig
from lfagent.rundir.store import RunStore
from lfagent.task import TaskSpec, load_task


def stored_config(stored: dict | None) -> PipelineConfig:
    """The run's pipeline settings; a run stored before the expert could be fine-tuned keeps the frozen one."""
    if stored is not None and "expert" not in stored:
        stored = {**stored, "expert": "frozen"}
    return PipelineConfig(**(stored or {}))


class Session:
    def __init__(self, task: TaskSpec | str | Path, run_dir: str | Path | None = None, *, llm="none",
                 config: PipelineConfig | None = None, progress=None, pool=None, embed: bool = True,
                 limits: LLMLimits | None = None, fail_fast: bool = False):
        """`fail_fast`: refuse a task nothing can label (see `_check_reachable`) before embedding anything,
        as `lfagent run` wants; the REPL leaves it to the first fit, so that an LF can be added first."""
        self.task = task if isinstance(task, TaskSpec) else load_task(task)
        self.run_dir = Path(run_dir) if run_dir else Path("runs") / self.task.name
        self.store = RunStore(self.run_dir)
        self.config = config or stored_config(self.store.get_meta("config"))
        self.store.set_meta("config", self.config.model_dump())
        self.store.set_meta("task", {**self.task.model_dump(mode="json"), "base_dir": str(self.task.base_dir)})
        if not isinstance(task, TaskSpec):  # so `lfagent run --resume` can continue a run made here
            self.store.set_meta("task_path", str(Path(task).resolve()))
            if self.store.get_meta("run_args") is None:  # ...with this session's LLM and embeddings
                self.store.set_meta("run_args", {"llm": llm or "auto", "no_embeddings": not embed})
        self.say = progress or (lambda message: None)
        self._pool = pool
        self._own_pool = False
        self.uses_embeddings = embed and not self._embeddings_unavailable()
        self.llm_spec = llm or "auto"
        self._llm = None
        self.limits = limits or LLMLimits()  # calls, tokens and prices for this session's LLM
        self.llm_round = 0  # the round the LLM's calls are recorded under (set by the proposal stage)
        self.llm_purpose = "propose"  # what they are recorded as: "propose", or "annotate" (agent/annotate.py)
        self.result: PipelineResult | None = None
        self._no_fine_tuning = False  # setfit is missing: the expert stays frozen (see _ensure_expert_views)
        self._expert_embedder = None  # encodes for a fine-tuned expert (expert_embed)
        self.seeds: Records = load_seeds(self.task)
        self.unseeded: list[str] = self._warn_unseeded()
        if fail_fast:
            try:
                self._check_reachable(self.pins())
            except InputError:
                self.store.close()
                raise
        self.unlabeled: Records = load_unlabeled(self.task)
        self.corpus = self._build_corpus()
        self.votes = VoteCache(self.corpus, lambda: self.pool, progress=self.say)

    def _warn_unseeded(self) -> list[str]:
        """Classes no seed carries: the run goes on (they are still classes) and says so once, here and in
        the run card (run meta `unseeded_classes`); `fit` refuses only if nothing could label them."""
        missing = unseeded_classes(self.task, self.seeds)
        self.store.set_meta("unseeded_classes", missing)
        if missing:
            import warnings

            from lfagent.errors import UnseededClassWarning

            warnings.warn(UnseededClassWarning(
                f"the seeds have no example of class(es) {missing}; going on: they get labels only from LFs "
                "that vote them (yours, or an LLM's from their description), from the LLM's record labels and "
                "the label model, starting from a small prior, and no seed can measure how well. Add a few "
                "seeds of each if you can"), stacklevel=3)
        return missing

    def _check_reachable(self, pins: dict[str, str]) -> None:
        """Refuse to fit when a class has no seed and nothing at all could vote it: no LLM, no LF for it.

        Single-label only: there each record of such a class would silently get another class's label.
        A multi-label class nothing votes is simply never on, which is what the labels then say (the
        warning has said why)."""
        if not self.unseeded or self.llm_spec != "none" or self.task.multi_label:
            return
        lfs = [lf for lf in self.external_lfs() if pins.get(lf.name) != "drop"]
        stranded = [c for c in self.unseeded if not any(lf.label in (c, None) for lf in lfs)]
        if stranded:
            raise InputError(f"class(es) {stranded} have no seed example, and nothing could label them: with "
                             "--llm none no LF votes them. Add seeds of them, run with an LLM (--llm local or "
                             "--llm openai:MODEL), or add an LF that votes them (Session.add_lf, or `lfagent "
                             "repl`)", path=self.task.resolve(self.task.seeds))

    def _embeddings_unavailable(self) -> bool:
        """A core install has no embedder: the run goes on without embeddings and says so once."""
        from lfagent.data.embed import embeddings_missing

        why = embeddings_missing()
        if why:
            import warnings

            warnings.warn(f"running without embeddings: {why}", stacklevel=3)
        return why is not None

    # -- data
    def _build_corpus(self) -> Corpus:
        seed_emb = unl_emb = class_emb = embed = None
        if self.uses_embeddings:
            from lfagent.counting import counter, reporter
            from lfagent.data.embed import Embedder, default_cache_dir

            # A resumed run keeps the encoder it started with: its LFs' prototypes live in that space.
            embedder = Embedder(default_cache_dir() / "embeddings.sqlite", embedder=self.store.get_meta("embedder"))
            self.store.set_meta("embedder", embedder.name)
            with counter(self.say, f"embedding ({embedder.name})", len(self.seeds) + len(self.unlabeled)) as count:
                seed_emb = embedder.encode(self.seeds.texts, progress=reporter(count))
                unl_emb = embedder.encode(self.unlabeled.texts, progress=reporter(count))
            self.embedder, embed = embedder, embedder.encode
            if all(c.description.strip() for c in self.task.classes):  # vouching by meaning needs them all
                class_emb = embedder.encode([f"{c.name}: {c.description}" for c in self.task.classes])
        corpus = Corpus(class_names=self.task.class_names, multi_label=self.task.multi_label,
                        seed_texts=self.seeds.texts, seed_y=self.seeds.y, unl_texts=self.unlabeled.texts,
                        seed_emb=seed_emb, unl_emb=unl_emb, seed_rows=self.seeds.rows, unl_rows=self.unlabeled.rows,
                        class_emb=class_emb, embed=embed, text_field=self.task.text_field,
                        embedder_name=self.embedder.name if self.uses_embeddings else None)
        return corpus

    def _ensure_expert_views(self) -> None:
        """The fine-tuned expert's vectors, built at the first fit (a REPL opened with --no-fit waits)."""
        if (self.corpus.expert_views is None and self.uses_embeddings and self.config.expert == "finetuned"
                and not self._no_fine_tuning):
            if not self._fine_tuning_available():
                self._no_fine_tuning = True  # warned once; later fits use the frozen expert quietly
                return
            self.corpus.expert_views = self._expert_views(self.corpus)

    def _fine_tuning_available(self) -> bool:
        import importlib.util

        if importlib.util.find_spec("setfit") is None:
            import warnings

            warnings.warn("the expert reads frozen MiniLM vectors: fine-tuning it on the seeds needs setfit "
                          "(pip install 'lfagent[embed]')", stacklevel=4)
            return False
        return True

    def _expert_views(self, corpus: Corpus):
        from lfagent.data.embed import default_cache_dir
        from lfagent.fit.fewshot_views import EXPERT_DIR, build_expert_views
        from lfagent.fit.fold_fit import fold_indices

        folds = fold_indices(corpus.seed_y, self.config.folds, self.config.seed, corpus.multi_label)
        return build_expert_views(corpus.seed_texts, corpus.seed_y, corpus.unl_texts,
                                  multi_label=corpus.multi_label, folds=folds, frozen_seed_emb=corpus.seed_emb,
                                  out_dir=self.run_dir / EXPERT_DIR,
                                  cache_path=default_cache_dir() / "embeddings.sqlite",
                                  progress=self.say, **self.config.fine_tune_options())

    def expert_embed(self):
        """Encodes texts for the fitted labeler's expert when it has its own encoder (else None)."""
        views = self.corpus.expert_views
        if views is None:
            return None
        from lfagent.data.embed import Embedder, default_cache_dir

        if self._expert_embedder is None:
            self._expert_embedder = Embedder(default_cache_dir() / "embeddings.sqlite", embedder=views.name,
                                             model_dir=views.model_dir)
        return self._expert_embedder.encode

    def _pool_for(self, lfs: list[LabelingFunction]):
        from lfagent.sandbox.apply import is_trusted

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

    def user_pins(self) -> dict[str, str]:
        """The user's own pins: 'keep' or 'drop' per LF name."""
        return {lf.name: pinned for lf, _, pinned, _ in self.store.lfs() if pinned}

    def pins(self) -> dict[str, str]:
        """Pins a fit obeys: LFs the agent's screen dropped (runs made before LLM LFs were judged inside the
        folds keep them), then the user's pins, which win."""
        return {**{name: "drop" for name in self.store.get_meta("screened_out", {})}, **self.user_pins()}

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
        """The LLM backend, built on first use with this session's limits; every response is kept in the
        run store, and calls paid in earlier sessions of the run count against the budget."""
        if self._llm is None and self.llm_spec != "none":
            from lfagent.llm.cache import ResponseCache
            from lfagent.llm.factory import make_llm

            budget = self.limits.budget()
            budget.add_prior_usage(**self.store.llm_usage())
            self._llm = make_llm(self.llm_spec, cache=ResponseCache(self.run_dir / "llm_cache.sqlite"),
                                 budget=budget, on_response=self._record_llm_call)
        return self._llm

    def _record_llm_call(self, request, response) -> None:
        from lfagent.llm.base import canonical_request_key

        if response.cached:
            return
        cost = self._llm.budget.prices.cost(response.prompt_tokens, response.completion_tokens) if self._llm else 0.0
        self.store.put_llm_call(canonical_request_key(request, "run"), round_=self.llm_round, purpose=self.llm_purpose,
                                request=request.model_dump(mode="json"), response=response.model_dump(mode="json"),
                                prompt_tokens=response.prompt_tokens, completion_tokens=response.completion_tokens,
                                cost=cost)

    def proposals(self, round_: int = 0):
        """The LLM's side of round `round_`: prompts built from this session, proposals admitted here."""
        from lfagent.agent.proposals import ProposalStage

        return ProposalStage(self, round_)

    def prompt_context(self, round_: int = 0):
        return self.proposals(round_).prompt_context()

    def write_guideline(self, *, round_: int = 1) -> str | None:
        """Ask the LLM for a labeling guideline once (see ProposalStage.write_guideline)."""
        return self.proposals(round_).write_guideline()

    def propose(self, n: int = 1, *, kind: str = "code", class_name: str | None = None, round_: int = 0):
        """Ask the LLM for LFs; new ones become candidates, rejections are recorded with their reason."""
        return self.proposals(round_).propose(n, kind=kind, class_name=class_name)

    def refine(self, name: str, *, round_: int = 0):
        """Show an LF its false positives and misses on the seeds and ask for a better version."""
        return self.proposals(round_).refine(name)

    def annotate(self, n: int, *, round_: int = 0, batch_size: int | None = None):
        """Have the LLM label `n` records the model is least sure of, and every seed, `batch_size` records a
        request (default 10); its labels become the candidate LF `llm_annotations`, scored at the next fit (see
        agent/annotate.py)."""
        from lfagent.agent.annotate import annotate_records

        return annotate_records(self, n, round_=round_, batch_size=batch_size)

    def seed_members(self) -> np.ndarray:
        """n_seed x k bool: is seed i of class c."""
        return (np.asarray(self.seeds.y, bool) if self.task.multi_label
                else np.eye(self.task.cardinality, dtype=bool)[self.seeds.y])

    # -- fitting
    def fit(self, *, pins: dict[str, str] | None = None, record: bool = True) -> Metrics:
        """Fit with cross-fitting. `pins` replaces `self.pins()` for a trial fit; `record=False` leaves the
        run store untouched (a trial's outcome is not the run's state)."""
        self._check_reachable(self.pins() if pins is None else pins)
        self._ensure_expert_views()
        self.result = run_pipeline(self.corpus, self.config, extra=self.external_lfs(),
                                   pins=self.pins() if pins is None else pins, votes=self.votes,
                                   progress=self.say if record else None)
        if record:
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
        for name, pin in self.pins().items():
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
        """Each kept LF's vote on one text and the calibrated probabilities (the run's labeler)."""
        labeler = self._fitted().labeler
        out = labeler.label([text], embed=self.embedder.encode if self.uses_embeddings else None,
                            embed_expert=self.expert_embed(), pool=self._pool_for(labeler.lfs))
        names = self.task.class_names
        votes = {lf.name: (names[v] if v >= 0 else None) for lf, v in zip(labeler.lfs, out.L[0])}
        return {"votes": votes, "probs": dict(zip(names, map(float, out.probs[0]))), "label": out.labels[0],
                "covered": bool(out.covered[0])}

    def evaluate(self) -> dict:
        """Cross-fitted seed figures; with a `test` file in the task, figures on it too (never fitted on)."""
        result = self._fitted()
        report = {"cross_fitted_seeds": result.metrics.model_dump()}
        if self.task.test:
            report["test"] = self._test_metrics(load_records(self.task, self.task.test, labeled=True))
        return report

    def _test_metrics(self, test: Records) -> dict:
        from lfagent.fit.evaluate import test_figures

        labeler = self.result.labeler
        return test_figures(labeler, test, embed=self.embedder.encode if self.uses_embeddings else None,
                            embed_expert=self.expert_embed(), pool=self._pool_for(labeler.lfs))

    # -- writing it out
    def write_outputs(self) -> Path:
        from lfagent.rundir.outputs import write_run_outputs

        result = self._fitted()
        write_run_outputs(self.run_dir, self.task, self.store.run_id, self.seeds, self.unlabeled, result,
                          uses_embeddings=self.uses_embeddings)
        return self.run_dir / "silver.jsonl"

    def export(self, path: str | Path) -> Path:
        from lfagent.rundir.export import write_lf_module

        return write_lf_module(Path(path), self._fitted().labeler.lfs, task=self.task, run_id=self.store.run_id)

    def close(self) -> None:
        if self._own_pool and self._pool is not None:
            self._pool.close()
        if self._llm is not None:
            self._llm.close()
        if self._expert_embedder is not None:
            self._expert_embedder.close()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
