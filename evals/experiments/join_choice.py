"""How the label model's join weight is chosen, against the weight that would have been best on test.

    python -m evals.experiments.join_choice run DATASET DRAW OUT_DIR     # one lfagent-none run, its data kept
    python -m evals.experiments.join_choice table OUT_DIR/*.npz          # every rule on every kept run

`run` runs the benchmark's lfagent-none system on a draw (fine-tunes from $LFAGENT_CACHE when made before)
and keeps, in OUT_DIR/DATASET-DRAW.npz: the held-out seed predictions at each weight of JOIN_WEIGHTS (the last
cross-fitting of the run), the held-out seeds' vectors from the final encoder (which saw them: a leaky,
too-strong stand-in for the final expert), and the test split's label-model and expert probabilities, so that
any weight can be scored on test afterwards. Single-label datasets only.

`table` prints, per run, the test score (trec and youtube accuracy, sms F1 of spam) at the weight each rule
chooses from the seeds, beside the best weight on test. Choose rules on tuning draws (10-11) only. Rules:
chosen (what the run chose), group (least held-out log-loss with the held-out experts, the group encoders'),
accuracy (the same by held-out accuracy, a tie to the lower weight), leaky (with a head on the final
encoder's vectors as the expert, as `crossfit._final_like` does since it was adopted), middle (between group
and leaky), alone (weight 0).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

from evals.datasets import DEFAULT_DATA_DIR, load_dataset, make_draw

EPS = 1e-6


def run(dataset: str, draw_seed: int, out_dir: Path, data_dir: str) -> Path:
    import evals.systems as systems
    import lfagent.fit.crossfit as crossfit
    import lfagent.fit.fewshot_views as views_module
    from evals.systems import DrawContext, run_system

    views_module.KEEP_SHARED = 10_000  # a cache holding many draws' fine-tunes keeps them all
    seen: dict = {}
    joined = crossfit._joined

    def capture(by_weight, covered, corpus, folds, *rest):
        seen.update(by_weight={w: p.copy() for w, p in by_weight.items()}, covered=covered.copy(),
                    corpus=corpus, folds=[f.copy() for f in folds])
        return joined(by_weight, covered, corpus, folds, *rest)

    crossfit._joined = capture
    work = out_dir / f"{dataset}-{draw_seed}"

    @contextlib.contextmanager
    def kept(prefix: str = "", dir=None):
        work.mkdir(parents=True, exist_ok=True)
        yield str(work)

    systems.tempfile.TemporaryDirectory = kept
    data = load_dataset(dataset, data_dir)
    if data.multi_label:
        sys.exit("join_choice: single-label datasets only")
    draw = make_draw(data, n_seeds=100, extra_unlabeled=2000, seed=draw_seed)  # the benchmark's defaults
    run_system("lfagent-none", DrawContext(data=data, draw=draw, embed=None))
    return _save(seen, work / "run", data, out_dir / f"{dataset}-{draw_seed}.npz")


def _save(seen: dict, run_dir: Path, data, path: Path) -> Path:
    from lfagent.data.embed import Embedder, default_cache_dir
    from lfagent.fit.expert import expert_proba
    from lfagent.rundir.files import load_model
    from lfagent.sandbox.apply import apply_lfs

    labeler = load_model(run_dir).labeler
    cache = default_cache_dir() / "embeddings.sqlite"
    tuned = Embedder(cache, embedder=labeler.expert_embedder, model_dir=run_dir / "expert" / "encoder")
    corpus = seen["corpus"]
    texts, y = data.test.texts, data.test.y
    frozen = Embedder(cache).encode(texts)
    L = apply_lfs(labeler.lfs, texts, labeler.class_names, embeddings=frozen).L
    weights = sorted(seen["by_weight"])
    fold_of = np.zeros(len(corpus.seed_y), dtype=int)
    for f, rows in enumerate(seen["folds"]):
        fold_of[rows] = f
    lm_test, covered_test = labeler.model_copy(update={"join_weight": 1.0}).raw_proba(L, frozen, tuned.encode(texts))
    expert_test = expert_proba(labeler.expert, tuned.encode(texts), labeler.k)
    lm_test = np.where(covered_test[:, None], lm_test / np.clip(expert_test, EPS, 1), 1.0)  # p_lm, up to a row scale
    np.savez(path, weights=np.array(weights), heldout=np.stack([seen["by_weight"][w] for w in weights]),
             covered=seen["covered"], seed_y=corpus.seed_y, fold_of=fold_of,
             leaky_seed_emb=tuned.encode(list(corpus.seed_texts)), test_lm=lm_test, test_expert=expert_test,
             test_covered=covered_test, test_y=np.asarray(y), k=labeler.k, chosen=labeler.join_weight,
             dataset=path.stem.rsplit("-", 1)[0])
    print(f"kept {path}: chosen weight {labeler.join_weight}")
    return path


# ---- rules ----------------------------------------------------------------------------------------------

def joint(lm: np.ndarray, expert: np.ndarray, covered: np.ndarray, w: float) -> np.ndarray:
    out = np.clip(lm, EPS, None) ** w * np.clip(expert, EPS, 1)
    out = out / out.sum(axis=1, keepdims=True)
    return np.where(covered[:, None], out, expert)


def score(dataset: str, probs: np.ndarray, y: np.ndarray) -> float:
    pred = probs.argmax(axis=1)
    if dataset == "sms":  # F1 of spam (class 1), as the benchmark reports it
        tp = int(((pred == 1) & (y == 1)).sum())
        return 2 * tp / max(int((pred == 1).sum() + (y == 1).sum()), 1)
    return float((pred == y).mean())


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], EPS, 1))))


def heldout_parts(d) -> tuple[np.ndarray, np.ndarray]:
    """Held-out label-model (up to a row scale) and expert probabilities, from the weight-0 and weight-1 rows."""
    weights = list(d["weights"])
    expert = d["heldout"][weights.index(0.0)]
    lm = d["heldout"][weights.index(1.0)] / np.clip(expert, EPS, 1)
    return lm, expert


def leaky_expert(d) -> np.ndarray:
    """Each fold's seeds by a head trained on the other folds, on the final encoder's vectors (it saw them)."""
    from lfagent.fit.expert import expert_proba, fit_expert

    emb, y, fold_of, k = d["leaky_seed_emb"], d["seed_y"], d["fold_of"], int(d["k"])
    out = np.zeros((len(y), k))
    for f in np.unique(fold_of):
        test = fold_of == f
        state = fit_expert(emb[~test], y[~test], False, seed=0, prior=np.bincount(y, minlength=k) / len(y))
        out[test] = expert_proba(state, emb[test], k)
    return out


def choose(lm, expert, covered, y, grid, loss=log_loss) -> float:
    rows = np.flatnonzero(covered)
    losses = [loss(joint(lm[rows], expert[rows], np.ones(len(rows), bool), w), y[rows]) for w in grid]
    return grid[int(np.argmin(losses))]


def table(paths: list[Path]) -> None:
    from lfagent.fit.expert import JOIN_WEIGHTS

    grid = list(JOIN_WEIGHTS)
    rules = ("chosen", "group", "accuracy", "leaky", "middle", "alone")
    print("| run | group-expert acc | leaky acc | " + " | ".join(rules) + " | best on test |")
    print("|---|---|---|" + "---|" * len(rules) + "---|")
    totals = {r: [] for r in rules + ("best",)}
    for path in paths:
        d = np.load(path, allow_pickle=False)
        dataset, y = str(d["dataset"]), d["seed_y"]
        lm, expert = heldout_parts(d)
        leak = leaky_expert(d)
        covered = d["covered"]
        picks = {"chosen": float(d["chosen"]), "leaky": choose(lm, leak, covered, y, grid)}
        picks["group"] = choose(lm, expert, covered, y, grid)  # by the held-out (group) experts
        picks["middle"] = (picks["group"] + picks["leaky"]) / 2
        # held-out accuracy, a tie going to the lower weight (the expert)
        picks["accuracy"] = choose(lm, expert, covered, y, grid[::-1], loss=lambda p, t: -np.mean(p.argmax(1) == t))
        picks["alone"] = 0.0

        def on_test(w):
            return score(dataset, joint(d["test_lm"], d["test_expert"], d["test_covered"], w), d["test_y"])

        fine = [i / 8 for i in range(9)]
        best = max(fine, key=lambda w: (round(on_test(w), 6), -w))
        cells = []
        for r in rules:
            totals[r].append(on_test(picks[r]))
            cells.append(f"{picks[r]:.2f}: {totals[r][-1]:.3f}")
        totals["best"].append(on_test(best))
        print(f"| {path.stem} | {(expert.argmax(1) == y).mean():.2f} | {(leak.argmax(1) == y).mean():.2f} | "
              + " | ".join(cells) + f" | {best:.3f}: {totals['best'][-1]:.3f} |")
    print("| mean | | | " + " | ".join(f"{np.mean(totals[r]):.3f}" for r in rules)
          + f" | {np.mean(totals['best']):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("dataset")
    one.add_argument("draw", type=int)
    one.add_argument("out_dir", type=Path)
    one.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    many = sub.add_parser("table")
    many.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.dataset, args.draw, args.out_dir, args.data_dir)
    else:
        table(args.paths)


if __name__ == "__main__":
    main()
