"""`lfagent run TASK.yaml --out RUN_DIR [--llm none|local|local:MODEL|openai:MODEL]` and `--resume RUN_DIR`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lfagent.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", help="task.yaml (not needed with --resume)")
    parser.add_argument("--out", help="run directory to write (created if missing)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run that stopped or was killed")
    parser.add_argument("--llm", default=None,
                        help="none | local | local:NAME_OR_PATH.gguf | openai:MODEL (default: openai when "
                             "OPENAI_API_KEY/OPENAI_BASE_URL is set, else local)")
    parser.add_argument("--rounds", type=int, default=3, help="agent rounds (LLM runs only)")
    parser.add_argument("--max-llm-calls", type=int, default=None, help="stop asking the LLM after this many calls")
    parser.add_argument("--annotate", type=int, default=None, metavar="N",
                        help="records the LLM labels, once, after round 1; its labels enter as one more LF "
                             "(llm_annotations; per class for multi-label tasks), judged on the seeds it labels "
                             "too, and when kept they also train the fine-tuned expert (default: 300 with "
                             "--llm openai:MODEL, 0 with local or none)")
    parser.add_argument("--annotate-batch", type=int, default=None, metavar="N",
                        help="records in one labelling request (default 10, at most 50): more spend fewer calls "
                             "on the same records, so --annotate can label more under --max-llm-calls")
    parser.add_argument("--max-tokens", type=int, default=None, help="stop after this many LLM tokens in total")
    parser.add_argument("--price-prompt", type=float, default=0.0, metavar="USD",
                        help="price per 1M prompt tokens, for the run's cost accounting")
    parser.add_argument("--price-completion", type=float, default=0.0, metavar="USD",
                        help="price per 1M completion tokens")
    parser.add_argument("--seed", type=int, default=0, help="seed for folds and every random choice")
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds over the seeds")
    parser.add_argument("--no-embeddings", action="store_true", help="no MiniLM LFs or fallback (faster)")
    parser.add_argument("--expert", choices=("finetuned", "frozen"), default=None,
                        help="the embedding expert's encoder: MiniLM fine-tuned on the seeds (default; a few "
                             "minutes on 2 CPU cores for 100 seeds, cached for later runs on the same seeds) or "
                             "frozen MiniLM (seconds, weaker on topic-like tasks); default from $LFAGENT_EXPERT")
    parser.add_argument("--expert-steps", type=int, default=None, metavar="N",
                        help="cap each fine-tune of the expert at N optimiser steps (default 500; with 100 seeds "
                             "the final one takes 2 x 20 x 100 / 16 = 250); fewer is faster and usually worse")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the most LLM calls, tokens and money this run may spend (with --rounds, "
                             "--max-llm-calls, --max-tokens, --price-*), then stop without calling the model")


def main(args: argparse.Namespace) -> int:
    from lfagent.cli.progress import Progress

    if args.dry_run:
        return _dry_run(args)
    progress = Progress(False if args.quiet else None)
    run_dir, task_path = _locations(args)
    from lfagent.agent.run import run_agent
    from lfagent.rundir.store import RunStore

    if args.resume:  # the original run's settings, unless given again now
        store = RunStore(run_dir)
        saved = store.get_meta("run_args", {})
        store.close()
        for key, value in saved.items():
            if getattr(args, key, None) in (None, parser_defaults().get(key)):
                setattr(args, key, value)
        if "expert" not in saved and args.expert is None:  # made before the expert was fine-tuned
            args.expert = "frozen"

    if not args.no_embeddings:
        from lfagent.data.embed import embeddings_missing

        why = embeddings_missing()
        if why:  # a core install: the run goes on without them
            print(f"lfagent run: running without embeddings: {why}", file=sys.stderr)
            args.no_embeddings = True
    summary = run_agent(task_path, run_dir, llm=args.llm, rounds=args.rounds, max_llm_calls=args.max_llm_calls,
                        max_tokens=args.max_tokens, seed=args.seed, folds=args.folds,
                        prices=(args.price_prompt, args.price_completion),
                        embed=not args.no_embeddings, progress=progress, annotate=args.annotate,
                        expert=args.expert, expert_steps=args.expert_steps, annotate_batch=args.annotate_batch)
    print(_summary_text(run_dir, summary))
    return 0


def _dry_run(args) -> int:
    """The plan only: no run directory, no backend (so no network client) is built."""
    from lfagent.data.dataset import load_seeds
    from lfagent.llm.plan import format_plan, plan_run
    from lfagent.task import load_task

    if not args.task or args.resume:
        raise InputError("--dry-run needs TASK.yaml (and not --resume)")
    llm = args.llm or "auto"
    task = load_task(args.task)
    seeds = load_seeds(task)
    expert = _expert_plan(args, task, seeds)
    if llm == "none":
        print("dry run (--llm none): no LLM calls; mined LFs only" + (f"\n{expert}" if expert else ""))
        return 0
    prices = (args.price_prompt, args.price_completion)
    plan = plan_run(task, seeds, rounds=args.rounds, max_llm_calls=args.max_llm_calls,
                    max_tokens=args.max_tokens, prices=prices, embed=not args.no_embeddings, seed=args.seed,
                    model=llm.partition(":")[2] or None, annotate=_annotate_default(args, llm),
                    annotate_batch=args.annotate_batch)
    print(format_plan(plan, llm=llm, prices=prices) + (f"\n{expert}" if expert else ""))
    return 0


def _expert_plan(args, task, seeds) -> str:
    """The compute a run spends without the LLM: the expert's fine-tunes (or that they are cached)."""
    from lfagent.fit.fewshot_views import planned_steps
    from lfagent.agent.run import run_config
    from lfagent.fit.fold_fit import fold_indices

    config = run_config(seed=args.seed, folds=args.folds, expert=args.expert, expert_steps=args.expert_steps)
    if args.no_embeddings or config.expert != "finetuned":
        return ""
    folds = fold_indices(seeds.y, config.folds, config.seed, task.multi_label)
    options = config.fine_tune_options()
    steps, cached = planned_steps(seeds.texts, seeds.y, multi_label=task.multi_label, folds=folds, **options)
    if cached:
        return "embedding expert: fine-tuned on these seeds already (shared cache): no fine-tuning"
    bf16 = options["options"].get("precision") == "bf16"
    return (f"embedding expert: 3 fine-tunes of MiniLM on {len(seeds.texts)} seeds, {steps:,} optimiser steps "
            f"(about {0.75 if bf16 else 1} s each on 2 CPU cores for comment-length texts"
            f"{', bfloat16 mixed precision' if bf16 else ''}; --expert frozen skips them)")


def _annotate_default(args, llm: str) -> int:
    from lfagent.agent.annotate import default_annotate

    return default_annotate(llm) if args.annotate is None else args.annotate


def parser_defaults() -> dict:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args([]))


def _locations(args) -> tuple[Path, Path]:
    if args.resume:
        run_dir = Path(args.resume)
        state = run_dir / "run.sqlite"
        if not state.is_file():
            raise InputError("not a run directory (no run.sqlite)", path=run_dir)
        from lfagent.rundir.store import RunStore

        store = RunStore(run_dir)
        task_path = store.get_meta("task_path")
        store.close()
        if not task_path:
            raise InputError("run has no recorded task file", path=state)
        return run_dir, Path(task_path)
    if not args.task or not args.out:
        raise InputError("give TASK.yaml and --out RUN_DIR (or --resume RUN_DIR)")
    return Path(args.out), Path(args.task)


def _summary_text(run_dir: Path, summary: dict) -> str:
    m = summary["metrics"]
    lines = [f"run {summary['run_id']}: {m['n_kept']} LFs kept of {m['n_candidates']} candidates; "
             f"label model {m['label_model']}" + _join_text(m, summary.get("joined_expert")),
             f"cross-fitted seed accuracy {m['seed_accuracy']:.3f} "
             f"[{m['seed_accuracy_low']:.3f}, {m['seed_accuracy_high']:.3f}], ECE {m['seed_ece']:.3f}; "
             f"unlabeled coverage {m['unlabeled_coverage']:.3f}"]
    if summary.get("test"):
        lines.append("held-out test: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                                     for k, v in summary["test"].items()}))
    if summary.get("llm"):
        u = summary["llm"]
        lines.append(f"LLM: {u['calls']} calls, {u['prompt_tokens'] + u['completion_tokens']} tokens, "
                     f"${u['cost']:.4f}" + _annotation_cost(u.get("by_purpose") or {}))
    lines.append(f"wrote {run_dir / 'silver.jsonl'} ({summary['n_silver']} records), lfs.txt, metrics.json")
    return "\n".join(lines)


def _join_text(metrics: dict, expert: str | None) -> str:
    """The label model's weight in its product with the embedding expert (1: equal partners, 0: the
    expert alone), when an expert joins it."""
    if expert is None or metrics.get("join_weight") is None:
        return ""
    return f" at weight {metrics['join_weight']:.2f}, joined with the {expert} expert"


def _annotation_cost(by_purpose: dict) -> str:
    a = by_purpose.get("annotate")
    if not a:
        return ""
    return (f" (of which record labels: {a['calls']} calls, {a['prompt_tokens'] + a['completion_tokens']} tokens, "
            f"${a['cost']:.4f})")
