"""`python -m evals`: run the benchmark, print the tables, write evals/results/.

    python -m evals --datasets youtube,sms,trec,goemotions --draws 5
    python -m evals --quick --systems lfagent-local          # one draw, small unlabeled pool
    python -m evals --llm openai:gpt-4o-mini                 # adds lfagent-openai:gpt-4o-mini and zeroshot
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
QUICK_EXTRA_UNLABELED = 300


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", type=_csv, default=None,
                        help="comma-separated: youtube,sms,trec,goemotions (default: all four)")
    parser.add_argument("--systems", type=_csv, default=None,
                        help="comma-separated: lfagent-none,lr-seeds,setfit-seeds,wrench-mv,wrench-lfagent-lm,wrench-snorkel,"
                             "lfagent-local,lfagent-openai:MODEL,lfagent-llm (= lfagent with --llm),zeroshot, "
                             "lfagent-expert,lfagent-liar,lfagent-expert-tenth,expert-label-all (simulated LLMs, evals/simulated/); "
                             "+end after an lfagent system scores the end model trained on its silver labels "
                             "(default: the systems needing no LLM, plus lfagent-llm and zeroshot when --llm is given)")
    parser.add_argument("--draws", type=int, default=None, help="random draws of the seeds (default 5; --quick: 1)")
    parser.add_argument("--first-draw", type=int, default=0, help="seed of the first draw")
    parser.add_argument("--seeds", type=int, default=100, dest="n_seeds", help="seed labels per draw")
    parser.add_argument("--extra-unlabeled", type=int, default=None,
                        help=f"train rows added to the unlabeled pool (default 2000; --quick: {QUICK_EXTRA_UNLABELED})")
    parser.add_argument("--llm", default=None,
                        help="LLM for lfagent-llm and zeroshot: local | local:NAME | openai:MODEL")
    parser.add_argument("--rounds", type=int, default=2, help="lfagent agent rounds (LLM systems)")
    parser.add_argument("--max-llm-calls", type=int, default=None, help="LLM call budget per lfagent run")
    parser.add_argument("--zeroshot-limit", type=int, default=None, metavar="N",
                        help="zeroshot labels a random N test rows per draw instead of all (said in the table)")
    parser.add_argument("--wrench-dir", action="append", default=[], metavar="PATH",
                        help="another WRENCH-format folder (repeatable; name = folder name)")
    parser.add_argument("--data-dir", default=None, help="folder holding wrench-youtube/, ..., goemotions/ "
                                                          "(default: ../shared/data beside the repo)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where RESULTS.md, results.json, results.png go")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 draw, small unlabeled pool")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def build_config(args: argparse.Namespace):
    from evals.bench import BenchConfig
    from evals.datasets import DEFAULT_DATA_DIR
    from evals.systems import NO_LLM_SYSTEMS

    llm = args.llm or "local"
    systems = args.systems or (NO_LLM_SYSTEMS + (["lfagent-llm", "zeroshot"] if args.llm else []))
    systems = [f"lfagent-{llm}" if s == "lfagent-llm" else s for s in systems]
    datasets = args.datasets if args.datasets is not None else (
        [] if args.wrench_dir else ["youtube", "sms", "trec", "goemotions"])
    draws = args.draws if args.draws is not None else (1 if args.quick else 5)
    extra = args.extra_unlabeled if args.extra_unlabeled is not None else (
        QUICK_EXTRA_UNLABELED if args.quick else 2000)
    return BenchConfig(datasets=datasets, systems=list(dict.fromkeys(systems)), draws=draws,
                       first_draw=args.first_draw, n_seeds=args.n_seeds, extra_unlabeled=extra, llm=llm,
                       rounds=args.rounds, max_llm_calls=args.max_llm_calls, zeroshot_limit=args.zeroshot_limit,
                       wrench_dirs=args.wrench_dir, data_dir=args.data_dir or str(DEFAULT_DATA_DIR))


def _check_systems(systems: list[str]) -> None:
    from lfagent.errors import InputError

    known = {"lr-seeds", "lr-seeds-default", "setfit-seeds", "zeroshot", "wrench-mv", "wrench-lfagent-lm",
             "wrench-snorkel", "expert-label-all"}
    unknown = [s for s in systems if s not in known and not s.startswith("lfagent-")]
    if unknown:
        raise InputError(f"unknown system(s) {unknown}; known: {sorted(known)} and lfagent-<LLM SPEC>")


def main(args: argparse.Namespace, command: str | None = None) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small dense algebra: 2 BLAS threads are slower here
    from evals.bench import run_benchmark, timestamp
    from evals.report import console_tables, machine_info, write_results

    config = build_config(args)
    _check_systems(config.systems)
    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    started = timestamp()
    header = {"command": command or "python -m evals " + shlex.join(sys.argv[1:]), "started": started,
              "machine": machine_info()}

    def save(partial: dict) -> None:
        write_results({**partial, **header, "finished": "(running)"}, args.out)

    results = run_benchmark(config, say=say, on_run_done=save)
    results.update(header, finished=timestamp())
    paths = write_results(results, args.out)
    print(console_tables(results))
    print(f"\nwrote {paths['markdown']}, {paths['json'].name}, {paths['plot'].name}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    from lfagent.errors import LFAgentError

    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except LFAgentError as exc:
        print(f"evals: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
