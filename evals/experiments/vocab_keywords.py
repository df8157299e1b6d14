"""An LLM's surest words, from the vocabulary probe, added as LLM keyword LFs to lfagent --llm none.

For each draw: the words of the draw's own texts (seeds and unlabeled, at least --min-count of them) are
put to the model as in evals.vocab_probe; the --top words it is surest belong to each class become keyword
LFs (provenance llm:keywords, so they are screened like the LLM's own keywords). Prints the silver score
without and with them and which of them selection kept. Binary tasks only.

    python -m evals.experiments.vocab_keywords --dataset sms [--llm local] [--draws 5] [--top 15]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from evals.datasets import load_dataset
from evals.experiments.common import draw_context, silver_score
from evals.systems import write_task_dir
from evals.vocab_probe import ask, centred, endpoint, probe_prompt, word_counts
from lfagent.lf import LabelingFunction, Provenance
from lfagent.fit.fold_fit import PipelineConfig
from lfagent.session import Session


def surest_words(texts: list[str], ask_word, *, min_count: int, top: int) -> list[tuple[str, int]]:
    """(word, class) for the `top` words the model leans to most for class 1, then for class 0."""
    words, counts = word_counts(texts, np.zeros(len(texts), dtype=int), 1)
    words = [w for w, n in zip(words, counts[:, 0]) if n >= min_count]
    scores = centred(np.array([ask_word(w) for w in words]))
    order = np.argsort(scores[:, 0] - scores[:, 1])  # class 1 first
    return [(words[i], 1) for i in order[:top]] + [(words[i], 0) for i in order[::-1][:top]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="sms")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--min-count", type=int, default=8)
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset)
    if data.k != 2 or data.multi_label:
        raise SystemExit(f"{data.name}: binary single-label tasks only")
    client, model, llm = endpoint(args.llm)
    asked: dict[str, np.ndarray] = {}

    def ask_word(word: str) -> np.ndarray:
        if word not in asked:
            asked[word] = ask(client, model, probe_prompt(word, data), data.k)
        return asked[word]

    print("| draw | without | with | kept of the words |\n|---|---|---|---|")
    try:
        for seed in range(args.draws):
            ctx = draw_context(data, seed)
            with tempfile.TemporaryDirectory() as tmp:
                task = write_task_dir(Path(tmp) / "task", ctx)
                texts = [json.loads(line)["text"] for name in ("seeds.jsonl", "unlabeled.jsonl")
                         for line in (task.parent / name).open(encoding="utf-8")]
                picks = surest_words(texts, ask_word, min_count=args.min_count, top=args.top)
                scores, kept = [], []
                for with_words in (False, True):
                    run = Path(tmp) / f"run-{with_words}"
                    with Session(task, run, llm="none", config=PipelineConfig(seed=seed), progress=lambda m: None) as s:
                        for word, c in picks if with_words else ():
                            s.add_lf(LabelingFunction(
                                name=f"llm_kw_{data.class_names[c].lower()}_{word}", kind="keywords",
                                label=data.class_names[c], keywords=[word],
                                provenance=Provenance(source="llm:keywords", detail=f"{model} (probe)")))
                        s.fit()
                        s.write_outputs()
                        kept = [r["name"] for r in s.lfs if r["status"] == "kept" and r["source"] == "llm:keywords"]
                    scores.append(silver_score(run, data))
            print(f"| {seed} | {scores[0]:.3f} | {scores[1]:.3f} | {len(kept)} of {len(picks)}: {', '.join(kept)} |",
                  flush=True)
    finally:
        llm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
