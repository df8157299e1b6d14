"""Does an LLM know a task's vocabulary? A probe of the knowledge LLM-written LFs would need.

LLM LFs can beat LFs mined from ~100 seeds only with knowledge the seeds lack: which words mark which
class. This probe asks the model about each frequent word of the training texts ("a text contains the
word W: which class is it most likely?", answered with one letter; the letters' log-probabilities are
read, then centred per letter over all words, which removes the model's letter bias without labels).
The truth is each word's class share in the fully labelled training split: a word *leans* to class c
when P(c | word) covers at least half the way from c's prior to certainty (spam words in sms: at least
0.57; ham words: at least 0.93). The score is balanced accuracy over leaning words (chance: 1/k), and
for two classes also the AUC of the score difference. Words that lean nowhere are asked but not scored.

    python -m evals.vocab_probe --datasets youtube,sms,trec --llm local --out evals/results/vocab-probe
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from evals.datasets import BenchData, load_dataset
from evals.bench import timestamp
from evals.report import machine_info
from lfagent.propose.mined import STOPWORDS

LETTERS = "ABCDEFGHIJ"
MISSING_LOGPROB = -30.0   # a letter outside the top log-probabilities the server returned
WORD = re.compile(r"[a-z][a-z']+")


def word_counts(texts: list[str], y: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    """Words (3+ letters, no stopwords) and their (n_words, k) counts of texts per class."""
    counts: dict[str, np.ndarray] = {}
    for text, label in zip(texts, y):
        for word in set(WORD.findall(text.lower())):
            if len(word) > 2 and word not in STOPWORDS:
                counts.setdefault(word, np.zeros(k, dtype=int))[label] += 1
    words = sorted(counts)
    return words, np.array([counts[w] for w in words]).reshape(len(words), k)


def leaning(counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Per word, the class it leans to (-1: none): P(c | word) >= prior_c + (1 - prior_c) / 2."""
    share = counts / counts.sum(axis=1, keepdims=True)
    best = share.argmax(axis=1)
    strong = share[np.arange(len(share)), best] >= (1 + prior[best]) / 2
    return np.where(strong, best, -1)


def centred(logprobs: np.ndarray) -> np.ndarray:
    """Subtract each letter's mean over the words: the model's letter bias, estimated without labels."""
    return logprobs - logprobs.mean(axis=0, keepdims=True)


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    recalls = [float((predicted[truth == c] == c).mean()) for c in range(k) if (truth == c).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive word scores above a negative one (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + ties / 2)


def probe_prompt(word: str, data: BenchData) -> str:
    options = "\n".join(f"{LETTERS[c]}) {name}: {data.class_descriptions.get(name, '') or name}"
                        for c, name in enumerate(data.class_names))
    return (f"Task: {data.description}\nClasses:\n{options}\n\n"
            f"A text contains the word \"{word}\". Which class is that text most likely to belong to? "
            f"Answer with the letter only.")


def letter_logprobs(top: list[tuple[str, float]], k: int) -> np.ndarray:
    """Log-probability per class letter from a first token's top alternatives ("A", " A", "a" count)."""
    out = np.full(k, MISSING_LOGPROB)
    for token, logprob in top:
        letter = token.strip().strip(")").upper()
        if len(letter) == 1 and letter in LETTERS[:k]:
            c = LETTERS.index(letter)
            out[c] = max(out[c], logprob)
    return out


def ask(client, model: str, prompt: str, k: int) -> np.ndarray:
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=1, temperature=0.0,
        logprobs=True, top_logprobs=20)
    content = completion.choices[0].logprobs.content if completion.choices[0].logprobs else None
    top = [(t.token, t.logprob) for t in content[0].top_logprobs] if content else []
    return letter_logprobs(top, k)


def probe_dataset(data: BenchData, client, model: str, *, min_count: int, workers: int) -> dict:
    if data.multi_label:
        raise SystemExit(f"{data.name}: the vocabulary probe needs single-label data")
    y = np.asarray(data.train.y)
    words, counts = word_counts(data.train.texts, y, data.k)
    frequent = counts.sum(axis=1) >= min_count
    words, counts = [w for w, f in zip(words, frequent) if f], counts[frequent]
    prior = np.bincount(y, minlength=data.k) / len(y)
    truth = leaning(counts, prior)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        raw = np.array(list(pool.map(lambda w: ask(client, model, probe_prompt(w, data), data.k), words)))
    seconds = time.perf_counter() - started
    scores = centred(raw)
    predicted = scores.argmax(axis=1)
    scored = truth >= 0
    row = {"dataset": data.name, "classes": data.k, "words_asked": len(words), "words_leaning": int(scored.sum()),
           "balanced_accuracy": balanced_accuracy(truth[scored], predicted[scored], data.k),
           "chance": 1 / data.k, "seconds": round(seconds, 1),
           "answered": float((raw.max(axis=1) > MISSING_LOGPROB).mean())}
    if data.k == 2:
        c = data.positive_class if data.positive_class is not None else 1
        row["auc"] = auc(scores[scored, c] - scores[scored, 1 - c], truth[scored] == c)
    order = np.argsort(-(scores.max(axis=1) - np.sort(scores, axis=1)[:, -2]))  # most confident first
    row["most_confident"] = [{"word": words[i], "said": data.class_names[predicted[i]],
                              "leans": data.class_names[truth[i]] if truth[i] >= 0 else None}
                             for i in order[:15]]
    return row


def endpoint(spec: str):
    """(openai.OpenAI client, model name, the lfagent LLM to close) for an --llm spec."""
    import openai
    from lfagent.llm import make_llm
    llm = make_llm(spec)
    if llm is None:
        raise SystemExit("the probe needs an LLM: --llm local, local:NAME or openai:MODEL")
    base_url = llm.start() if hasattr(llm, "start") else llm.base_url
    client = openai.OpenAI(base_url=base_url, api_key=llm._api_key or "not-needed", timeout=120, max_retries=2)
    model = llm.model or client.models.list().data[0].id
    return client, model, llm


def markdown(result: dict) -> str:
    lines = ["# Does the LLM know the task's vocabulary?", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Machine: {result['machine'].get('processor')}, {result['machine'].get('cpus')} CPUs  ",
             f"Code: git {result['machine'].get('git_commit')}  ", f"Model: {result['model']}", "",
             (__doc__ or "").split("\n\n")[1].replace("\n", " "), "",
             "| dataset | classes | words asked | words leaning | balanced accuracy | chance | AUC | answered | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        auc_cell = f"{r['auc']:.3f}" if "auc" in r else "–"
        lines.append(f"| {r['dataset']} | {r['classes']} | {r['words_asked']} | {r['words_leaning']} | "
                     f"{r['balanced_accuracy']:.3f} | {r['chance']:.3f} | {auc_cell} | {r['answered']:.2f} | "
                     f"{r['seconds']:.0f} |")
    for r in result["rows"]:
        lines += ["", f"## {r['dataset']}: the 15 words the model is surest of", "",
                  "| word | model says | word leans to |", "|---|---|---|"]
        lines += [f"| {m['word']} | {m['said']} | {m['leans'] or '(no class)'} |" for m in r["most_confident"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.vocab_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="youtube,sms,trec")
    parser.add_argument("--llm", default="local", help="local | local:NAME | openai:MODEL")
    parser.add_argument("--min-count", type=int, default=15, help="ask about words in at least N training texts")
    parser.add_argument("--workers", type=int, default=2, help="requests in flight")
    parser.add_argument("--out", default=None, help="folder for RESULTS.md and results.json")
    args = parser.parse_args(argv)
    client, model, llm = endpoint(args.llm)
    started = timestamp()
    try:
        rows = [probe_dataset(load_dataset(name.strip()), client, model, min_count=args.min_count,
                              workers=args.workers) for name in args.datasets.split(",")]
    finally:
        llm.close()
    command = "python -m evals.vocab_probe " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command, "date": started, "machine": machine_info(), "model": llm.describe(), "rows": rows}
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "RESULTS.md").write_text(text)
        (out / "results.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
