"""A kept multi-label run's label model refitted other ways, its expert and join weight held fixed: micro-F1 on
the test rows of the label model alone and of the join (decided at 0.5).

    python -m evals.experiments.keep_run goemotions 10 lfagent-expert-tenth OUT     # keeps OUT/run, OUT/task
    python -m evals.experiments.multilabel_label_models OUT/run goemotions [--data-dir ../shared/data]

Ways: `plain` (what the run fitted: Dawid-Skene per class), `dev-accuracy` (per class, chosen on the seeds
by accuracy, log-loss breaking ties: LabelModel's auto with dev labels), `dev-log-loss` (log-loss first),
`three-sources` (Dawid-Skene where a class's view has three or more sources, else a soft majority vote with
the seeds' prior: evals/results/multilabel-identifiability/patch.diff). A run's own refit would also choose
its LFs, join weight and cut-offs again, so these figures show what each label model does, not what a run
with it scores. Vectors come from the shared embedding cache ($LFAGENT_CACHE) the run filled.
"""
from __future__ import annotations

import json

import numpy as np

from evals.experiments.common import kept_run_args


def micro_f1(pred: np.ndarray, Y: np.ndarray) -> float:
    tp, fp, fn = (pred & (Y == 1)).sum(), (pred & (Y == 0)).sum(), (~pred & (Y == 1)).sum()
    return float(2 * tp / max(2 * tp + fp + fn, 1))


def main() -> None:
    import lfagent.fit.label_model as label_model
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.fit.expert import expert_proba, join_experts
    from lfagent.fit.label_model import LabelModel
    from lfagent.fit.multilabel import MultiLabelModel, binary_view
    from lfagent.rundir.files import load_model

    args, data = kept_run_args(__doc__.splitlines()[0])
    names, run, task = data.class_names, args.run_dir, args.run_dir.parent / "task"
    labeler = load_model(run).labeler
    seeds = [json.loads(line) for line in (task / "seeds.jsonl").read_text().splitlines()]
    unlabeled = [json.loads(line) for line in (task / "unlabeled.jsonl").read_text().splitlines()]
    Y_seed = np.array([[int(c in row["label"]) for c in names] for row in seeds])
    cache = default_cache_dir() / "embeddings.sqlite"
    frozen = Embedder(cache, embedder=labeler.embedder)
    tuned = Embedder(cache, embedder=labeler.expert_embedder, model_dir=run / "expert" / "encoder")

    def votes(texts):
        return labeler.votes(texts, embeddings=frozen.encode(texts) if labeler.needs_embeddings else None)

    L_seed, L_unl = votes([r["text"] for r in seeds]), votes([r["text"] for r in unlabeled])
    test = list(data.test.texts)
    L_test, Y_test = votes(test), np.asarray(data.test.y)
    expert = expert_proba(labeler.expert, tuned.encode(test), labeler.k)
    covered = (L_test != -1).any(axis=1)
    sets = {int(j): c for j, c in labeler.label_model.get("label_sets", {}).items()}
    prior = (Y_seed.sum(axis=0) + 0.5) / (len(Y_seed) + 1.0)

    def fitted(how: str) -> np.ndarray:
        if how == "three-sources":
            models = []
            for c in range(len(names)):
                view = binary_view(L_unl, c, "negative", sets)
                if (view != -1).any(axis=0).sum() >= 3:
                    models.append(LabelModel(2, "dawid_skene").fit(view, seed=c))
                else:
                    models.append(LabelModel(2, "majority").fit(view, seed=c, class_balance=[1 - prior[c], prior[c]]))
            return np.column_stack([m.predict_proba(binary_view(L_test, c, "negative", sets))[:, 1]
                                    for c, m in enumerate(models)])
        if how == "plain":
            return MultiLabelModel(len(names), "dawid_skene", label_sets=sets).fit(L_unl, seed=0).predict_proba(L_test)
        return MultiLabelModel(len(names), label_sets=sets).fit(L_unl, seed=0, L_dev=L_seed,
                                                                Y_dev=Y_seed).predict_proba(L_test)

    select = label_model.LabelModel._select_on_dev

    def by_log_loss(self, *args):
        select(self, *args)
        return min(self.selection_.log_loss, key=lambda name: (self.selection_.log_loss[name],
                                                               -self.selection_.accuracy[name]))

    print(f"join weight {labeler.join_weight}\n| label model | alone | joined with the expert |\n|---|---|---|")
    for how in ("plain", "dev-accuracy", "dev-log-loss", "three-sources"):
        if how == "dev-log-loss":
            label_model.LabelModel._select_on_dev = by_log_loss
        try:
            lm = fitted(how)
        finally:
            label_model.LabelModel._select_on_dev = select
        joined = join_experts(lm, expert, covered, True, labeler.join, weight=labeler.join_weight)
        print(f"| {how} | {micro_f1(lm >= 0.5, Y_test):.3f} | {micro_f1(joined >= 0.5, Y_test):.3f} |", flush=True)


if __name__ == "__main__":
    main()
