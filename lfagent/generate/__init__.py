"""Batch silver-label generation at scale: stream inputs -> label batches -> resumable output.

- stream.py       input files -> Batch (ids, texts), one batch in memory at a time
- label_batch.py  the pure step: Batch -> Arrow table of output rows (the output schema lives here)
- writer.py       durable, resumable Parquet/JSONL output with a progress journal
- engines/        local (in-process / process pool) and ray (Ray Data)
- runner.py       generate(): the whole command
"""
from lfagent.generate.runner import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
