"""Batch silver-label generation at scale: stream inputs -> label batches -> resumable output.

- stream.py       input files -> Batch (ids, texts), one batch in memory at a time
- model.py        a run's model.json -> Predictor (votes, label model, fallback, calibration)
- label_batch.py  the pure step: Batch -> Arrow table of output rows (the output schema lives here)
- writer.py       durable, resumable Parquet/JSONL output with a progress journal
- engines/        local (in-process / process pool) and ray (Ray Data)
- runner.py       generate(): the whole command; synthetic.py: a seeded corpus for benchmarks
"""
from lfagent.generate.model import Predictor, predictor_from_run
from lfagent.generate.runner import GenerateSummary, generate

__all__ = ["GenerateSummary", "Predictor", "generate", "predictor_from_run"]
