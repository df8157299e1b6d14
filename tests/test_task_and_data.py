"""Task files and data readers: the documented format loads; bad files and rows say what and where."""
import json

import pytest

from conftest import EXAMPLE_TASK, SHARED_DATA, write_task
from lfagent.data.dataset import load_records, load_seeds, load_unlabeled
from lfagent.data.readers import iter_rows
from lfagent.errors import InputError
from lfagent.task import load_task

SEEDS = "".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in
                [("check out my channel", "SPAM"), ("great song", "HAM"), ("subscribe pls", "SPAM")])
UNLABELED = "".join(json.dumps({"text": t}) + "\n" for t in ["nice", "visit my site"])


def test_issue_example_task_loads_with_commas_in_flow_descriptions(tmp_path):
    # The task.yaml from the issue, verbatim: the SPAM description has commas inside a flow mapping.
    (tmp_path / "seeds.jsonl").write_text(SEEDS)
    (tmp_path / "unlabeled.jsonl").write_text(UNLABELED)
    (tmp_path / "task.yaml").write_text(
        "name: youtube-spam\ndescription: Classify YouTube comments as spam or not.\nclasses:\n"
        "  - {name: HAM, description: A genuine comment about the video or the artist}\n"
        "  - {name: SPAM, description: Self-promotion, links, requests to subscribe or visit}\n"
        "multi_label: false          # true: a record may carry several classes\ntext_field: text\n"
        "seeds: seeds.jsonl\nunlabeled: unlabeled.jsonl\n")
    task = load_task(tmp_path / "task.yaml")
    assert task.class_names == ["HAM", "SPAM"]
    assert task.classes[1].description == "Self-promotion, links, requests to subscribe or visit"
    seeds = load_seeds(task)
    assert list(seeds.y) == [1, 0, 1]
    unlabeled = load_unlabeled(task)
    assert unlabeled.ids == [0, 1]  # no id field: the 0-based line number


def test_example_task_loads():
    task = load_task(EXAMPLE_TASK)
    assert len(load_seeds(task)) == 100
    assert len(load_unlabeled(task)) > 1000


@pytest.mark.parametrize("body, field, line", [
    ("name: t\nclasses: [A]\nseeds: s.jsonl\n", "classes", 2),
    ("name: t\nclasses: [A, B]\n", "seeds", None),
    ("name: t\nclasses: [A, B]\nseeds: s.jsonl\ncolour: red\n", "colour", 4),
    ("name: t\nclasses: [A, A]\nseeds: s.jsonl\n", None, None),
])
def test_bad_task_fields_are_named(tmp_path, body, field, line):
    path = tmp_path / "task.yaml"
    path.write_text(body)
    with pytest.raises(InputError) as info:
        load_task(path)
    assert str(path) in str(info.value)
    if field:
        assert info.value.field == field
    if line:
        assert info.value.line == line


def test_task_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("name: t\nclasses: [A, B\nseeds: x\n")
    with pytest.raises(InputError) as info:
        load_task(path)
    assert info.value.line is not None and "YAML" in str(info.value)


@pytest.mark.parametrize("seeds, message, line, field", [
    ('{"text": "a", "label": "SPAM"}\n{"text": "b", "label": "EGGS"}\n', "unknown class 'EGGS'", 2, "label"),
    ('{"text": "a", "label": "SPAM"}\n{"txt": "b", "label": "HAM"}\n', "missing text", 2, "text"),
    ('{"text": "a", "label": "SPAM"}\n{"text": "b", "label": "HAM"\n', "not valid JSON", 2, None),
    ('{"text": "a", "label": "SPAM"}\n{"text": "b"}\n', "missing label", 2, "label"),
    ('{"text": "a", "label": "SPAM", "id": 1}\n{"text": "b", "label": "HAM", "id": 1}\n', "duplicate id", 2, "id"),
    ('{"text": ["a"], "label": "SPAM"}\n', "text must be a string", 1, "text"),
    ('[1, 2]\n', "expected a JSON object", 1, None),
])
def test_bad_seed_rows_name_file_line_and_field(tmp_path, seeds, message, line, field):
    task = load_task(write_task(tmp_path, seeds=seeds, unlabeled=UNLABELED))
    with pytest.raises(InputError) as info:
        load_seeds(task)
    assert message in str(info.value)
    assert info.value.line == line and info.value.field == field
    assert info.value.path.endswith("seeds.jsonl")


def test_a_class_missing_from_the_seeds_is_allowed_and_named(tmp_path):
    from lfagent.data.dataset import unseeded_classes

    task = load_task(write_task(tmp_path, seeds='{"text": "a", "label": "SPAM"}\n', unlabeled=UNLABELED))
    assert unseeded_classes(task, load_seeds(task)) == ["HAM"]  # the session warns; see test_unseeded.py


def test_csv_and_parquet_readers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path = tmp_path / "d.csv"
    csv_path.write_text('text,label\n"hello, world",HAM\nbuy now,SPAM\n')
    assert [r for _, r in iter_rows(csv_path)] == [{"text": "hello, world", "label": "HAM"},
                                                   {"text": "buy now", "label": "SPAM"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,HAM\ntoo,many,cells\n")
    with pytest.raises(InputError) as info:
        list(iter_rows(bad))
    assert info.value.line == 3
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "id": [7, 8]}), pq_path)
    assert [(line, r["id"]) for line, r in iter_rows(pq_path)] == [(1, 7), (2, 8)]


def test_a_bad_utf8_byte_past_the_encoding_probe_names_its_csv_line(tmp_path):
    rows = "".join(f"{i},caf\u00e9 {'x' * 60}\n" for i in range(20_000))  # ~1.4 MB: past the 1 MB probe
    path = tmp_path / "late.csv"
    path.write_bytes(b"id,text\n" + rows.encode() + b"20000,bad \xff byte\n20001,after\n")
    with pytest.raises(InputError) as info:
        list(iter_rows(path))
    assert info.value.line == 20_002 and "not utf-8 text" in str(info.value)


def test_gzipped_jsonl_seeds_load(tmp_path):
    import gzip

    (tmp_path / "seeds.jsonl.gz").write_bytes(gzip.compress(b'{"text": "hi", "label": "HAM"}\n\n'
                                                          b'{"text": "buy", "label": "SPAM"}\n'))
    assert [(line, r["label"]) for line, r in iter_rows(tmp_path / "seeds.jsonl.gz")] == [(1, "HAM"), (3, "SPAM")]
    (tmp_path / "fake.jsonl.gz").write_bytes(b'{"text": "not compressed"}\n')
    with pytest.raises(InputError, match="cannot decompress"):
        list(iter_rows(tmp_path / "fake.jsonl.gz"))


def test_wrench_reader_maps_label_names_and_keeps_weak_labels():
    rows = list(iter_rows(SHARED_DATA / "wrench-youtube" / "test.json"))
    assert len(rows) == 250
    _, first = rows[0]
    assert first["label"] in {"HAM", "SPAM"}
    assert len(first["weak_labels"]) == 10 and "text" in first


def test_multi_label_seeds(tmp_path):
    seeds = '{"text": "a", "label": ["JOY", "LOVE"]}\n{"text": "b", "label": ["ANGER"]}\n'
    task = load_task(write_task(tmp_path, seeds=seeds, unlabeled=UNLABELED, extra="multi_label: true\n",
                                classes=("JOY", "LOVE", "ANGER")))
    records = load_records(task, task.seeds, labeled=True)
    assert records.y.tolist() == [[1, 1, 0], [0, 0, 1]]
