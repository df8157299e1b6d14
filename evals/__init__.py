"""Benchmark harness for lfagent (AutoWS-Bench-101 style): `python -m evals` from a checkout.

datasets.py  WRENCH folders and a GoEmotions multi-label subset; seeded draws of seeds/unlabeled rows
systems.py   lfagent-<llm>, lr-seeds, zeroshot, wrench-mv / wrench-lfagent-lm / wrench-snorkel
metrics.py   scores per draw, mean/sd over draws
bench.py     the loop; report.py: RESULTS.md, results.json, results.png
vocab_probe.py  does an LLM know which words mark which class? (python -m evals.vocab_probe)
experiments/    one-off analyses behind figures in closing notes (python -m evals.experiments.NAME)
"""
