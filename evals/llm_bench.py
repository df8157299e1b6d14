"""Benchmark an LLM backend: `python -m evals.llm_bench --llm local --max-tokens 64`.

Prints a table (start-up, latency, tokens/s alone and with concurrent requests); asserts nothing.
"""
from __future__ import annotations

import argparse
import time

from lfagent.llm.base import ChatRequest, ChatResponse
from lfagent.llm.factory import make_llm

LF_PROMPT = ("Write a Python function lf(text) that returns 1 if an SMS message is spam and 0 "
             "otherwise. Use keywords. Variant {i}.")


def _rows(llm, n_requests: int, max_tokens: int) -> list[tuple[str, float, str]]:
    rows = []
    started = time.monotonic()
    if hasattr(llm, "start"):
        llm.start()
    rows.append(("start (assemble/load model)", time.monotonic() - started, "s"))
    started = time.monotonic()
    llm.chat(ChatRequest.from_prompt("Say OK.", max_tokens=4, temperature=0.0, seed=-1))
    rows.append(("first short request", time.monotonic() - started, "s"))
    started = time.monotonic()
    one = llm.chat(ChatRequest.from_prompt(LF_PROMPT.format(i=0), max_tokens=max_tokens, seed=0))
    elapsed = time.monotonic() - started
    rows.append((f"1 request, {one.completion_tokens} tokens", one.completion_tokens / elapsed,
                 "tokens/s"))
    requests = [ChatRequest.from_prompt(LF_PROMPT.format(i=i), max_tokens=max_tokens,
                                        temperature=0.7, seed=i) for i in range(1, n_requests + 1)]
    started = time.monotonic()
    results = llm.chat_many(requests)
    elapsed = time.monotonic() - started
    tokens = sum(r.completion_tokens for r in results if isinstance(r, ChatResponse))
    rows.append((f"{n_requests} requests, concurrency {llm.max_concurrency}", tokens / elapsed,
                 "tokens/s"))
    schema = {"type": "object", "properties": {"keywords": {"type": "array",
                                                            "items": {"type": "string"}}},
              "required": ["keywords"]}
    started = time.monotonic()
    llm.chat(ChatRequest.from_prompt("List 3 spam keywords as JSON.", json_schema=schema,
                                     max_tokens=max_tokens, temperature=0.0, seed=0))
    rows.append(("json_schema request", time.monotonic() - started, "s"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm", default="local")
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    with make_llm(args.llm) as llm:
        rows = _rows(llm, args.requests, args.max_tokens)
        print(f"backend: {llm.describe()}")
        print(f"| {'measure':<40} | {'value':>8} | unit     |")
        print(f"|{'-' * 42}|{'-' * 10}|----------|")
        for name, value, unit in rows:
            print(f"| {name:<40} | {value:8.2f} | {unit:<8} |")
        print(llm.usage().model_dump())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
