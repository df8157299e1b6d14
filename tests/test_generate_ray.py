"""`generate --engine ray`: one local Ray per module (ray.init takes ~10 s here); same rows as local."""
from __future__ import annotations

import os

import pytest

from lfagent.generate import generate
from lfagent.generate.synthetic import synthetic_comments

from test_generate import make_run, read_output, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_and_local_engines_write_the_same_rows(ray_cluster, tmp_path):
    make_run(tmp_path / "run")
    records = list(synthetic_comments(2500, seed=21))
    records[5].pop("id")  # a missing id gets the same fallback id from either engine
    corpus = write_jsonl(tmp_path / "c.jsonl", records)
    local = generate(tmp_path / "run", [str(corpus)], tmp_path / "local.parquet", batch_size=300, votes=True)
    ray_run = generate(tmp_path / "run", [str(corpus)], tmp_path / "ray.parquet", engine="ray", workers=2,
                       batch_size=300, votes=True)
    assert local.rows_total == ray_run.rows_total == 2500
    assert ray_cluster.is_initialized()  # joined the running cluster and left it running
    local_rows, ray_rows = read_output(tmp_path / "local.parquet"), read_output(tmp_path / "ray.parquet")
    assert ray_rows == local_rows and ray_rows[5]["id"] == "c:5"


def test_ray_engine_resumes_a_partial_jsonl(ray_cluster, tmp_path):
    import json

    make_run(tmp_path / "run")
    corpus = write_jsonl(tmp_path / "c.jsonl", synthetic_comments(1200, seed=22))
    out = tmp_path / "o.jsonl"
    generate(tmp_path / "run", [str(corpus)], out, engine="ray", workers=2, batch_size=100)
    full = out.read_bytes()
    journal_path = tmp_path / "o.jsonl.progress.json"
    journal = json.loads(journal_path.read_text())
    cut = len(b"".join(full.splitlines(keepends=True)[:300]))
    journal.update(complete=False, rows=300, bytes=cut, done=[[0, b] for b in range(3)])
    journal_path.write_text(json.dumps(journal))
    out.write_bytes(full[:cut] + b'{"partial')
    summary = generate(tmp_path / "run", [str(corpus)], out, engine="ray", workers=2, batch_size=100)
    assert summary.batches_resumed == 3 and out.read_bytes() == full
