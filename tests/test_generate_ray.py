"""`generate --engine ray`: one local Ray per module (ray.init takes ~10 s here); same rows as local."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lfagent.generate import generate
from benchmarks.corpus import synthetic_comments

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
    local_card, ray_card = (Path(summary.card).read_text() for summary in (local, ray_run))
    assert ray_card == local_card.replace("local.parquet", "ray.parquet") and "| records | 2500 |" in ray_card


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


def test_ray_and_local_engines_write_the_same_jsonl_from_csv(ray_cluster, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    make_run(tmp_path / "run")
    records = list(synthetic_comments(1300, seed=23))
    records[3]["text"] = "a quoted\nmulti-line comment, subscribe"
    pcsv.write_csv(pa.Table.from_pylist(records), tmp_path / "c.csv")
    outputs = {}
    for engine, workers in (("local", 1), ("local", 2), ("ray", 2)):
        out = tmp_path / f"{engine}{workers}.jsonl"
        generate(tmp_path / "run", [str(tmp_path / "c.csv")], out, engine=engine, workers=workers, batch_size=200)
        outputs[(engine, workers)] = out.read_bytes()
    assert outputs[("ray", 2)] == outputs[("local", 1)] == outputs[("local", 2)]
    assert [r["id"] for r in read_output(tmp_path / "ray2.jsonl")] == [r["id"] for r in records]


def test_a_bad_line_under_ray_is_named_after_the_batches_before_it_are_committed(ray_cluster, tmp_path):
    import json

    from lfagent.errors import InputError

    make_run(tmp_path / "run")
    lines = [json.dumps(r) for r in synthetic_comments(1000, seed=24)]
    lines[650] = '{"id": "broken", "text": oops}'
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    with pytest.raises(InputError) as info:  # 50 shards of 20: blocks of 6 shards, the bad one mid-block
        generate(tmp_path / "run", [str(corpus)], out, engine="ray", workers=2, batch_size=20)
    assert str(info.value).startswith(f"{corpus}:651: not valid JSON")
    journal = json.loads((tmp_path / "o.jsonl.progress.json").read_text())
    assert journal["done"] == [[0, b] for b in range(32)] and journal["rows"] == 640 and not journal["complete"]
    assert [r["id"] for r in read_output(out)] == [json.loads(line)["id"] for line in lines[:640]]


def test_code_lfs_run_in_a_sandbox_inside_each_ray_actor(ray_cluster, tmp_path):
    from lfagent.lf import LabelingFunction, Provenance

    from test_generate import KEYWORD_LFS

    code = LabelingFunction(name="code_free", kind="code", label="SPAM", provenance=Provenance(source="llm:code"),
                            source="def label(record):\n    return 'SPAM' if record.get('n', 0) % 3 == 0 else None\n")
    make_run(tmp_path / "run", lfs=KEYWORD_LFS + [code])
    records = [dict(r, n=i) for i, r in enumerate(synthetic_comments(900, seed=25))]  # a field besides text
    corpus = write_jsonl(tmp_path / "c.jsonl", records)
    generate(tmp_path / "run", [str(corpus)], tmp_path / "o.jsonl", engine="ray", workers=2, votes=True,
             batch_size=200)
    got = read_output(tmp_path / "o.jsonl")
    assert [r["votes"]["code_free"] == "SPAM" for r in got] == [i % 3 == 0 for i in range(900)]
