"""`lfagent generate`: streaming, output schema, resume after kill -9, clear errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lfagent.fit import LabelModel
from lfagent.sandbox.apply import apply_lfs
from lfagent.rundir.files import RunModel, save_model
from lfagent.fit.calibrator import Calibrator
from lfagent.cli import main as cli_main
from lfagent.errors import InputError
from lfagent.generate import generate
from lfagent.generate.engines.local import run_local
from lfagent.generate.job import LabelJob
from lfagent.generate.stream import Batch
from benchmarks.corpus import synthetic_comments, write_synthetic_corpus
from lfagent.lf import LabelingFunction, Provenance, lf_set_hash

from conftest import EXAMPLE_TASK

CLASSES = ["HAM", "SPAM"]
KEYWORD_LFS = [
    LabelingFunction(name="kw_subscribe", kind="keywords", label="SPAM", keywords=["subscribe", "sub4sub"]),
    LabelingFunction(name="kw_channel", kind="keywords", label="SPAM", keywords=["my channel", "click here"]),
    LabelingFunction(name="kw_link", kind="regex", label="SPAM", pattern=r"https?://"),
    LabelingFunction(name="kw_song", kind="keywords", label="HAM", keywords=["song", "love this"]),
    LabelingFunction(name="kw_voice", kind="keywords", label="HAM", keywords=["voice", "beautiful"]),
]


def make_run(run_dir: Path, lfs=KEYWORD_LFS, method: str = "dawid_skene") -> RunModel:
    """A run dir with a real fitted label model over a synthetic corpus (no `lfagent run` needed)."""
    texts = [r["text"] for r in synthetic_comments(3000, seed=1)]
    if any(lf.kind == "code" for lf in lfs):
        from lfagent.sandbox import SandboxPool

        with SandboxPool(workers=1) as pool:
            L = apply_lfs(lfs, texts, CLASSES, pool=pool).L
    else:
        L = apply_lfs(lfs, texts, CLASSES).L
    label_model = LabelModel(cardinality=2, method=method).fit(L, seed=0)
    task = {"name": "t", "classes": [{"name": c} for c in CLASSES], "seeds": "seeds.jsonl",
            "base_dir": str(run_dir)}
    model = RunModel(run_id="run-test", task=task, lfs=lfs, label_model=label_model.to_state(),
                     calibrator=Calibrator(temperature=1.3), fallback=None, prior=[0.6, 0.4],
                     lf_set_hash=lf_set_hash(lfs), uses_embeddings=False)
    save_model(run_dir, model)
    return model


@pytest.fixture
def run_dir(tmp_path) -> Path:
    make_run(tmp_path / "run")
    return tmp_path / "run"


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_output_rows_follow_the_schema(run_dir, tmp_path):
    rows = [{"id": "a", "text": "please subscribe to my channel"}, {"id": "b", "text": "love this song"},
            {"text": "nothing to see"}, {"id": 7, "text": "her voice, and http://x.y"}]
    corpus = write_jsonl(tmp_path / "small.jsonl", rows)
    out = tmp_path / "out.parquet"
    generate(run_dir, [str(corpus)], out, votes=True, batch_size=3)
    got = read_output(out)
    assert [r["id"] for r in got] == ["a", "b", "small:2", "7"]  # missing id -> <file stem>:<row position>
    assert pq.read_schema(out).names == ["id", "label", "probs", "confidence", "covered", "votes", "run_id",
                                         "lf_set_hash"]
    for row in got:
        probs = row["probs"]
        assert set(probs) == set(CLASSES) and sum(probs.values()) == pytest.approx(1.0)
        assert row["label"] == max(probs, key=probs.get) and row["confidence"] == pytest.approx(max(probs.values()))
        assert (row["run_id"], row["lf_set_hash"]) == ("run-test", lf_set_hash(KEYWORD_LFS))
        assert row["covered"] == any(v is not None for v in row["votes"].values())
    assert got[0]["label"] == "SPAM" and got[0]["votes"]["kw_subscribe"] == "SPAM"
    assert got[1]["label"] == "HAM" and got[1]["votes"]["kw_song"] == "HAM" and got[1]["votes"]["kw_link"] is None
    assert not got[2]["covered"] and got[2]["label"] == "HAM"  # uncovered: the (calibrated) prior
    card = (tmp_path / "out.card.md").read_text()
    assert "# Dataset card: t: out.parquet" in card
    n_covered = sum(r["covered"] for r in got)
    assert f"| records | 4 |\n| covered by an LF | {n_covered} |\n| fallback (no LF voted) | {4 - n_covered} |" in card
    for name in CLASSES:
        n = sum(r["label"] == name for r in got)
        assert f"| {name} | {n} | {n / 4:.1%} |" in card
    assert f"{n_covered / 4:.1%} of records have at least one labeling-function vote" in card


def test_jsonl_output_equals_parquet_output_and_inputs_mix_formats(run_dir, tmp_path):
    records = list(synthetic_comments(500, seed=3))
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", records[:200])
    pa_table = pa.Table.from_pylist(records[200:350])
    pq.write_table(pa_table, tmp_path / "in" / "b.parquet")
    pa_table = pa.Table.from_pylist(records[350:])
    import pyarrow.csv as pcsv
    pcsv.write_csv(pa_table, tmp_path / "in" / "c.csv")
    inputs = [str(tmp_path / "in" / "*.jsonl"), str(tmp_path / "in" / "b.parquet"), str(tmp_path / "in" / "c.*")]
    cards = {}  # the card's counts from each format's output (both write o.card.md)
    for out, options in (("o.parquet", {}), ("o.jsonl", {"workers": 2})):
        card = generate(run_dir, inputs, tmp_path / out, batch_size=64, **options).card
        cards[out] = Path(card).read_text().split("## Accuracy estimate")[0].replace(out, "OUT")
    parquet_rows, jsonl_rows = read_output(tmp_path / "o.parquet"), read_output(tmp_path / "o.jsonl")
    assert [r["id"] for r in parquet_rows] == [r["id"] for r in records]
    assert parquet_rows == jsonl_rows
    n_spam = sum(r["label"] == "SPAM" for r in jsonl_rows)
    assert "| records | 500 |" in cards["o.jsonl"] and f"| SPAM | {n_spam} | {n_spam / 500:.1%} |" in cards["o.jsonl"]
    assert cards["o.parquet"] == cards["o.jsonl"]


def _tracked_batches(n_batches: int, size: int, live: dict):
    """A corpus that exists only one batch at a time; `live` counts rows alive in memory and their peak."""
    def released(n):
        live["now"] -= n

    for b in range(n_batches):
        texts = [f"please subscribe {b} {i}" if i % 2 else f"love this song {i}" for i in range(size)]
        batch = Batch(0, b, "gen", b * size, [f"r{b}-{i}" for i in range(size)], texts)
        live["now"] += size
        live["peak"] = max(live["peak"], live["now"])
        weakref.finalize(batch, released, size)
        yield batch
        del batch, texts


@pytest.mark.parametrize("workers", [1, 2])
def test_engine_never_holds_the_corpus(run_dir, workers):
    from lfagent.rundir.files import load_model

    job = LabelJob.create(load_model(run_dir).model_dump_json(), False)
    live = {"now": 0, "peak": 0}
    written = []
    n_batches, size = 120, 40

    def commit(keys, num_rows, payload):
        written.append(num_rows)

    rows = run_local(_tracked_batches(n_batches, size, live), job, commit, workers=workers)
    assert rows == sum(written) == n_batches * size
    # In flight: the local window (2 per worker) plus the one being read and the one being committed.
    assert live["peak"] <= (2 * workers + 3) * size < n_batches * size / 10


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: torch starts one thread anyway")
def test_a_pool_worker_that_loads_torch_runs_it_on_one_thread():
    # N workers share the cores; a worker imports torch only when it first loads a transformer encoder,
    # after its thread caps are set, and torch would otherwise start a thread per core in every worker.
    code = ("from lfagent.generate.engines.local import _init_worker\n"
            "_init_worker(None, None, 'jsonl')\n"
            "import torch\n"
            "print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]


def test_resume_truncates_partial_data_and_skips_committed_batches(run_dir, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", synthetic_comments(1000, seed=5))
    out = tmp_path / "o.jsonl"
    generate(run_dir, [str(corpus)], out, batch_size=100)
    full = out.read_bytes()
    journal = json.loads((tmp_path / "o.jsonl.progress.json").read_text())
    # Pretend the process died after 4 committed batches, mid-way through writing the 5th.
    cut = len(b"".join(full.splitlines(keepends=True)[:400]))
    journal.update(complete=False, rows=400, bytes=cut, done=[[0, b] for b in range(4)])
    (tmp_path / "o.jsonl.progress.json").write_text(json.dumps(journal))
    out.write_bytes(full[:cut] + b'{"id": "half a ro')
    summary = generate(run_dir, [str(corpus)], out, batch_size=100)
    assert summary.batches_resumed == 4 and summary.rows_written == 600 and summary.rows_total == 1000
    assert summary.steady_records_per_s > 0  # 6 commits: a rate between the first and the last
    assert out.read_bytes() == full


def test_parquet_resume_drops_uncommitted_parts(run_dir, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", synthetic_comments(600, seed=6))
    out = tmp_path / "o.parquet"
    generate(run_dir, [str(corpus)], out, batch_size=100)
    expected = read_output(out)
    journal_path = tmp_path / "o.parquet.progress.json"
    journal = json.loads(journal_path.read_text())
    out.unlink()
    parts = tmp_path / "o.parquet.parts"
    parts.mkdir()
    pq.write_table(pa.table({"junk": [1]}), parts / journal["parts"][0])  # written, but never journaled
    journal.update(complete=False, rows=0, parts=[], done=[])
    journal_path.write_text(json.dumps(journal))
    generate(run_dir, [str(corpus)], out, batch_size=100)
    assert read_output(out) == expected and not parts.exists()


def test_rerun_of_a_finished_command_does_nothing_and_a_different_one_is_refused(run_dir, tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", synthetic_comments(50, seed=7))
    out = tmp_path / "o.parquet"
    generate(run_dir, [str(corpus)], out, batch_size=20)
    card = tmp_path / "o.card.md"
    card.unlink()  # as an output finished before generate wrote cards
    rerun = generate(run_dir, [str(corpus)], out, batch_size=20)
    assert rerun.already_complete and rerun.card == str(card) and "| records | 50 |" in card.read_text()
    with pytest.raises(InputError, match="different generate command"):
        generate(run_dir, [str(corpus)], out, batch_size=10)
    assert generate(run_dir, [str(corpus)], out, batch_size=10, overwrite=True).rows_total == 50


def test_bad_input_line_is_named(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "ok"}\n{"id": 2, "text": "ok"}\n{"id": 3, "text": oops}\n')
    code = cli_main(["generate", str(run_dir), "--input", str(bad), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and f"{bad}:3" in err and "not valid JSON" in err and "Traceback" not in err
    no_text = write_jsonl(tmp_path / "notext.jsonl", [{"id": 1, "text": "a"}, {"id": 2, "body": "b"}])
    code = cli_main(["generate", str(run_dir), "--input", str(no_text), "--out", str(tmp_path / "p.jsonl")])
    assert code == 2 and f"{no_text}:2" in capsys.readouterr().err


def test_gzipped_jsonl_is_read_like_the_plain_file(run_dir, tmp_path, capsys):
    import gzip

    plain = _jsonl_with_blank_lines(tmp_path / "blank.jsonl")
    packed = tmp_path / "blank.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for batch_size in (1, 3, 100):
        assert ([(s.count, s.line) for s in _assert_shards_cut_like_iter_batches([packed], batch_size)]
                == [(s.count, s.line) for s in _assert_shards_cut_like_iter_batches([plain], batch_size)])
    # A .gz shard carries its bytes (seeking would decompress all the shards before it): reading one
    # does not open the file again.
    from lfagent.generate.shards import read_shard

    shards = _assert_shards_cut_like_iter_batches([packed], 2)
    expected = [_batch_view(read_shard(_task(), s)) for s in shards]
    packed.rename(tmp_path / "moved.jsonl.gz")
    assert [_batch_view(read_shard(_task(), s)) for s in shards] == expected
    records = list(synthetic_comments(300, seed=5))
    write_jsonl(tmp_path / "c.jsonl", records)
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress((tmp_path / "c.jsonl").read_bytes()))
    generate(run_dir, [tmp_path / "c.jsonl"], tmp_path / "plain.jsonl", batch_size=64)
    generate(run_dir, [tmp_path / "c.jsonl.gz"], tmp_path / "packed.jsonl", batch_size=64, workers=2)
    assert read_output(tmp_path / "plain.jsonl") == read_output(tmp_path / "packed.jsonl")
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes((tmp_path / "c.jsonl.gz").read_bytes()[:-40])  # truncated download
    code = cli_main(["generate", str(run_dir), "--input", str(cut), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and str(cut) in err and "cannot decompress" in err and "Traceback" not in err


def test_run_dir_without_model_and_missing_input_are_clear_errors(run_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "a"}])
    code = cli_main(["generate", str(tmp_path / "empty"), "--input", str(corpus), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "model.json" in err and "no fitted model" in err
    code = cli_main(["generate", str(run_dir), "--input", str(tmp_path / "nope*.jsonl"), "--out",
                     str(tmp_path / "o.jsonl")])
    assert code == 2 and "no input file matches" in capsys.readouterr().err
    code = cli_main(["generate", str(run_dir), "--input", str(corpus), "--out", str(tmp_path / "o.txt")])
    assert code == 2 and ".parquet or .jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [1, 2])
def test_code_lfs_run_in_the_sandbox(tmp_path, workers):
    code = LabelingFunction(name="code_free", kind="code", label="SPAM", provenance=Provenance(source="llm:code"),
                            source="def label(record):\n    return 'SPAM' if 'free' in record['text'].lower() else None\n")
    make_run(tmp_path / "run", lfs=KEYWORD_LFS + [code])
    records = list(synthetic_comments(1500, seed=9))
    corpus = write_jsonl(tmp_path / "c.jsonl", records)
    generate(tmp_path / "run", [str(corpus)], tmp_path / "o.jsonl", workers=workers, votes=True, batch_size=400)
    got = read_output(tmp_path / "o.jsonl")
    assert [r["votes"]["code_free"] == "SPAM" for r in got] == ["free" in r["text"].lower() for r in records]
    assert any(r["votes"]["code_free"] for r in got)


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "lfagent.cli", "generate", *map(str, args)]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_kill_9_then_rerun_gives_every_id_exactly_once(run_dir, tmp_path, suffix):
    n = 80_000
    corpus = write_synthetic_corpus(tmp_path / "big.jsonl", n, seed=11)
    out = tmp_path / f"out{suffix}"
    journal = tmp_path / f"out{suffix}.progress.json"
    command = _cli(run_dir, "--input", corpus, "--out", out, "--batch-size", 1000, "--quiet")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and json.loads(journal.read_text() or "{}").get("rows", 0) >= 3000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "finished before it could be killed; use a bigger corpus"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads(journal.read_text())
    assert not state["complete"] and 0 < state["rows"] < n
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in read_output(out)] if suffix == ".jsonl" else pq.read_table(out, columns=["id"])["id"].to_pylist()
    assert len(ids) == n and len(set(ids)) == n and set(ids) == {f"syn-{i}" for i in range(n)}


def test_matches_the_runs_own_silver_labels(tmp_path):
    run = tmp_path / "run"
    assert cli_main(["run", str(EXAMPLE_TASK), "--out", str(run), "--llm", "none", "--no-embeddings", "--quiet"]) == 0
    out = tmp_path / "gen.jsonl"
    generate(run, [str(EXAMPLE_TASK.parent / "unlabeled.jsonl")], out, batch_size=500, workers=2)
    silver = {str(r["id"]): r for r in map(json.loads, (run / "silver.jsonl").read_text().splitlines())}
    got = read_output(out)
    assert len(got) == len(silver)
    for row in got:
        expected = silver[row["id"]]
        assert row["label"] == expected["label"] and row["covered"] == expected["covered"]
        assert np.allclose([row["probs"][c] for c in CLASSES], [expected["probs"][c] for c in CLASSES], atol=1e-4)


# --- shards: the driver plans, workers read; the batches must be exactly those iter_batches cuts ---

def _task():
    from lfagent.task import TaskSpec

    return TaskSpec.model_validate({"name": "t", "classes": [{"name": c} for c in CLASSES], "seeds": "s.jsonl"})


def _batch_view(batch) -> tuple:
    return (batch.key, batch.path, batch.start, batch.ids, batch.texts, batch.rows)


def _assert_shards_cut_like_iter_batches(paths, batch_size, skip=frozenset()):
    from lfagent.generate.shards import plan_shards, read_shard
    from lfagent.generate.stream import iter_batches

    task = _task()
    expected = [_batch_view(b) for b in iter_batches(task, paths, batch_size, keep_rows=True, skip=skip)]
    shards = list(plan_shards(task, paths, batch_size, skip))
    assert [s.key for s in shards] == [e[0] for e in expected]
    assert [_batch_view(read_shard(task, s, keep_rows=True)) for s in shards] == expected
    assert all(read_shard(task, s).rows is None for s in shards)
    return shards


def _jsonl_with_blank_lines(path: Path) -> Path:
    lines = ['{"id": "a", "text": "first"}', "", "   ", "\u00a0", '{"text": "no id"}', "\t",
             '  {"id": 3, "text": "indented", "n": 1}', "\u2003 \u00a0", '{"id": "d", "text": "caf\u00e9 \u00a0"}',
             '{"id": "e", "text": 5}', "", '{"id": "f", "text": "last"}', ""]
    # CRLF endings and a lone CR (text-mode readline splits there too), and no newline at the very end.
    path.write_bytes(("\r\n".join(lines[:6]) + "\r" + "\n".join(lines[6:]) + '{"id": "g", "text": "end"}')
                     .encode("utf-8"))
    return path


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_shards_cut_jsonl_like_iter_batches(tmp_path, batch_size):
    path = _jsonl_with_blank_lines(tmp_path / "blank.jsonl")
    shards = _assert_shards_cut_like_iter_batches([path], batch_size)
    assert sum(s.count for s in shards) == 7


def test_shards_cut_csv_with_multiline_fields_and_latin1_like_iter_batches(tmp_path):
    multi = tmp_path / "multi.csv"
    multi.write_text('id,text,extra\r\n1,"line one\nline two",x\r\n\r\n2,"quoted, ""comma""",\r\n'
                     '3,"cr\rinside",y\r\n,"no id",z\n\n4,plain\n5,"a\n\nb\n",w\n', encoding="utf-8", newline="")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\n".encode() + "".join(f"{i},caf\u00e9 {i} \u00bfqu\u00e9?\n" for i in range(23))
                      .encode("latin-1"))
    for batch_size in (1, 2, 5, 50):
        _assert_shards_cut_like_iter_batches([multi, latin], batch_size)
    shards = _assert_shards_cut_like_iter_batches([latin], 5)
    assert {s.encoding for s in shards} == {"latin-1"} and len(shards) == 5


def test_shards_cut_parquet_row_groups_and_skip_like_iter_batches(tmp_path):
    records = list(synthetic_comments(230, seed=4))
    records[17].pop("id")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "groups.parquet", row_group_size=40)
    assert pq.ParquetFile(tmp_path / "groups.parquet").num_row_groups == 6
    jsonl = write_jsonl(tmp_path / "more.jsonl", records[:50])
    paths = [tmp_path / "groups.parquet", jsonl]
    for batch_size in (7, 40, 64, 500):
        _assert_shards_cut_like_iter_batches(paths, batch_size)
    shards = _assert_shards_cut_like_iter_batches(paths, 30, skip={(0, 0), (0, 3), (1, 1)})
    assert (0, 0) not in {s.key for s in shards} and shards[0].start == 30


def _raised(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("bad_line", [b'{"id": 3, "text": oops}', b'{"id": 3, "text": "caf\xe9"}', b"[1, 2]",
                                      b'{"id": 3, "body": "no text"}'])
def test_a_bad_record_in_a_shard_raises_the_local_engines_error(tmp_path, bad_line):
    from lfagent.generate.shards import plan_shards, read_shard
    from lfagent.generate.stream import iter_batches

    good = [json.dumps(r).encode() for r in synthetic_comments(12, seed=2)]
    path = tmp_path / "bad.jsonl"
    lines = good[:7] + [b"", bad_line] + good[7:]
    # Mixed line ends: CRLF, LF and a lone CR all end a line, for the numbers in error messages too.
    ends = [b"\r" if i == 2 else b"\r\n" if i % 2 else b"\n" for i in range(len(lines))]
    path.write_bytes(b"".join(line + end for line, end in zip(lines, ends)))
    task = _task()
    expected = _raised(lambda: list(iter_batches(task, [path], 4)))
    assert f"{path}:9" in expected
    shards = list(plan_shards(task, [path], 4))
    assert [s.count for s in shards] == [4, 4, 4, 1]
    read_shard(task, shards[0])
    assert _raised(lambda: read_shard(task, shards[1])) == expected


def test_a_csv_row_with_extra_cells_raises_the_local_engines_error(tmp_path):
    from lfagent.generate.shards import plan_shards, read_shard
    from lfagent.generate.stream import iter_batches

    path = tmp_path / "extra.csv"
    path.write_text('id,text\n1,a\n2,"b\rc"\r\n\n3,c,surplus\n4,d\n', encoding="utf-8", newline="")
    task = _task()
    expected = _raised(lambda: list(iter_batches(task, [path], 2)))
    assert f"{path}:6" in expected and "more cells" in expected
    shard = list(plan_shards(task, [path], 2))[1]
    assert _raised(lambda: read_shard(task, shard)) == expected
