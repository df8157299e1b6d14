"""`lfagent init`: a user's own files to a runnable task, and a clear one-line refusal for what cannot work."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SHARED_DATA
from lfagent.cli import main
from lfagent.data.init_task import MIN_SEEDS_PER_CLASS, detect_multi_label
from lfagent.task import load_task

SMS = SHARED_DATA / "sms-spam-collection"
GOEMOTIONS = SHARED_DATA / "goemotions"
EMOTIONS = {"0": "admiration", "1": "amusement", "15": "gratitude", "18": "love"}


def sms_rows(split: str, n: int) -> list[dict]:
    with open(SMS / f"{split}.csv", encoding="utf-8", newline="") as handle:
        return [{"body": r["v2"], "tag": r["v1"]} for _, r in zip(range(n), csv.DictReader(handle))]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def emotion_rows(n: int, *, skip: int = 0) -> list[dict]:
    """GoEmotions comments whose labels all lie in four emotions: a real multi-label sample."""
    rows = []
    with open(GOEMOTIONS / "train.tsv", encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle, delimiter="\t"):
            codes = r["label"].split(",")
            if all(c in EMOTIONS for c in codes):
                rows.append({"id": r["id"], "body": r["text"], "tag": [EMOTIONS[c] for c in codes]})
    return rows[skip:skip + n]


def init(*args, capsys=None) -> tuple[int, str, str]:
    code = main(["init", *map(str, args)])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def run_none(task: Path, out: Path) -> list[dict]:
    """`lfagent run --llm none --no-embeddings` on the task; its silver rows."""
    assert main(["run", str(task), "--out", str(out), "--llm", "none", "--no-embeddings", "--quiet"]) == 0
    return [json.loads(line) for line in (out / "silver.jsonl").read_text().splitlines()]


def test_csv_single_label_end_to_end(tmp_path, capsys):
    labeled = write_csv(tmp_path / "labeled.csv", sms_rows("train", 300))
    unlabeled = write_csv(tmp_path / "corpus.csv", sms_rows("valid", 200))
    code, out, _ = init("--labeled", labeled, "--unlabeled", unlabeled, "--text-column", "body",
                        "--label-column", "tag", "--out", tmp_path / "mytask", capsys=capsys)
    assert code == 0
    task_file = tmp_path / "mytask" / "task.yaml"
    text = task_file.read_text()
    task = load_task(task_file)
    counts = {n: sum(r["tag"] == n for r in sms_rows("train", 300)) for n in ("ham", "spam")}
    assert task.class_names == ["ham", "spam"] and not task.multi_label  # most frequent first
    assert f"# {counts['ham']} seeds" in text and f"# {counts['spam']} seeds" in text
    assert "Describe each class" in text and all(c.description == "" for c in task.classes)
    assert (task.text_field, task.label_field, task.unlabeled) == ("body", "tag", "../corpus.csv")
    seeds = [json.loads(line) for line in (tmp_path / "mytask" / "seeds.jsonl").read_text().splitlines()]
    assert len(seeds) == 300 and seeds[0]["id"] == 2  # no id column: the line in labeled.csv
    assert "ham: " in out and "lfagent run" in out
    silver = run_none(task_file, tmp_path / "run")
    assert len(silver) == 200


def test_seeds_are_drawn_stratified_and_reproducibly_the_rest_is_the_test_set(tmp_path, capsys):
    rows = sms_rows("train", 1000)
    labeled = write_jsonl(tmp_path / "labeled.jsonl", [{"id": f"m{i}", **r} for i, r in enumerate(rows)])
    unlabeled = write_csv(tmp_path / "corpus.csv", sms_rows("valid", 150))
    common = ["--labeled", labeled, "--unlabeled", unlabeled, "--text-column", "body", "--label-column", "tag",
              "--seeds", 80]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert init(*common, "--seed", seed, "--out", tmp_path / name, capsys=capsys)[0] == 0
    seeds = {name: [json.loads(l) for l in (tmp_path / name / "seeds.jsonl").read_text().splitlines()]
             for name in "abc"}
    assert seeds["a"] == seeds["b"] and seeds["a"] != seeds["c"]
    drawn = seeds["a"]
    spam_share = sum(r["tag"] == "spam" for r in rows) / len(rows)
    assert len(drawn) == 80
    n_spam = sum(r["tag"] == "spam" for r in drawn)
    assert max(MIN_SEEDS_PER_CLASS, int(80 * spam_share)) <= n_spam <= int(80 * spam_share) + 3
    test = [json.loads(l) for l in (tmp_path / "a" / "test.jsonl").read_text().splitlines()]
    assert len(test) == 920 and not {r["id"] for r in test} & {r["id"] for r in drawn}
    task = load_task(tmp_path / "a" / "task.yaml")
    assert task.test == "test.jsonl" and task.id_field == "id"
    run_none(tmp_path / "a" / "task.yaml", tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 920


def test_multi_label_csv_with_a_separator_and_a_parquet_glob_end_to_end(tmp_path, capsys):
    rows = emotion_rows(160)
    labeled = write_csv(tmp_path / "labeled.csv", [{**r, "tag": "|".join(r["tag"])} for r in rows])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    extra = emotion_rows(120, skip=160)
    for part in range(2):
        chunk = [{"id": r["id"], "body": r["body"]} for r in extra[part * 60:(part + 1) * 60]]
        pq.write_table(pa.Table.from_pylist(chunk), corpus / f"part-{part}.parquet")
    code, out, _ = init("--labeled", labeled, "--unlabeled", f"{corpus}/*.parquet", "--text-column", "body",
                        "--label-column", "tag", "--out", tmp_path / "mytask", "--unlabeled-rows", 100,
                        capsys=capsys)
    assert code == 0, out
    assert "multi-label (split on '|')" in out
    task = load_task(tmp_path / "mytask" / "task.yaml")
    assert task.multi_label and set(task.class_names) == set(EMOTIONS.values())
    seeds = [json.loads(l) for l in (tmp_path / "mytask" / "seeds.jsonl").read_text().splitlines()]
    assert any(len(r["tag"]) > 1 for r in seeds) and all(isinstance(r["tag"], list) for r in seeds)
    assert task.unlabeled == "unlabeled.jsonl"  # several files: a sample is copied
    sampled = (tmp_path / "mytask" / "unlabeled.jsonl").read_text().splitlines()
    assert len(sampled) == 100
    silver = run_none(tmp_path / "mytask" / "task.yaml", tmp_path / "run")
    assert len(silver) == 100


def test_multi_label_jsonl_lists_are_detected(tmp_path, capsys):
    labeled = write_jsonl(tmp_path / "labeled.jsonl", emotion_rows(160))
    unlabeled = write_jsonl(tmp_path / "u.jsonl", [{"body": r["body"]} for r in emotion_rows(50, skip=160)])
    code, out, _ = init("--labeled", labeled, "--unlabeled", unlabeled, "--text-column", "body",
                        "--label-column", "tag", "--out", tmp_path / "t", capsys=capsys)
    assert code == 0 and "multi-label (lists)" in out
    assert load_task(tmp_path / "t" / "task.yaml").multi_label
    assert len(run_none(tmp_path / "t" / "task.yaml", tmp_path / "run")) == 50


def test_separator_detection_needs_labels_that_recur_alone():
    assert detect_multi_label(["a", "b", "a|b"]) == (True, "|")
    assert detect_multi_label(["a", "b", "a,b"]) == (True, ",")
    assert detect_multi_label(["Arts, Culture", "Sports"]) == (False, None)  # one class with a comma
    assert detect_multi_label(["Sci/Tech", "World"]) == (False, None)
    assert detect_multi_label(["a", "a|b"], single_label=True) == (False, None)
    assert detect_multi_label(["a", "b"], separator=";") == (True, ";")


# -- refusals: one line on stderr, exit code 2, naming file, line and field -------------------------

@pytest.fixture
def unlabeled(tmp_path) -> Path:
    return write_csv(tmp_path / "corpus.csv", sms_rows("valid", 30))


def refuse(tmp_path, capsys, labeled, unlabeled, *extra, text="body", label="tag") -> str:
    code, out, err = init("--labeled", labeled, "--unlabeled", unlabeled, "--text-column", text,
                          "--label-column", label, "--out", tmp_path / "task", *extra, capsys=capsys)
    assert code == 2, out
    assert err.count("\n") == 1 and err.startswith("lfagent init: error: "), err
    return err


def test_one_class_is_refused(tmp_path, capsys, unlabeled):
    labeled = write_csv(tmp_path / "l.csv", [r for r in sms_rows("train", 200) if r["tag"] == "ham"])
    err = refuse(tmp_path, capsys, labeled, unlabeled)
    assert f"{labeled} (field 'tag'): only one class ('ham')" in err


def test_hundreds_of_distinct_labels_are_refused(tmp_path, capsys, unlabeled):
    rows = [{"body": r["body"], "tag": f"user{i}"} for i, r in enumerate(sms_rows("train", 500))]
    err = refuse(tmp_path, capsys, write_csv(tmp_path / "l.csv", rows), unlabeled)
    assert "(field 'tag'): 500 distinct labels" in err and "--label-column" in err


def test_an_empty_text_column_is_refused(tmp_path, capsys, unlabeled):
    rows = [{"body": "", "tag": r["tag"]} for r in sms_rows("train", 100)]
    err = refuse(tmp_path, capsys, write_csv(tmp_path / "l.csv", rows), unlabeled)
    assert "l.csv:2 (field 'body'): the text column is empty in all 100 rows" in err


def test_a_missing_text_value_names_its_line(tmp_path, capsys, unlabeled):
    rows = [{"body": r["body"], "tag": r["tag"]} for r in sms_rows("train", 20)]
    rows[6]["body"] = None
    err = refuse(tmp_path, capsys, write_jsonl(tmp_path / "l.jsonl", rows), unlabeled)
    assert "l.jsonl:7 (field 'body'): text must be a string, got nothing" in err


def test_too_few_seeds_of_a_class_names_the_class_and_its_lines(tmp_path, capsys, unlabeled):
    rows = [r for r in sms_rows("train", 300) if r["tag"] == "ham"][:100]
    spam = [r for r in sms_rows("train", 300) if r["tag"] == "spam"][:3]
    rows[10:10], rows[50:50], rows[80:80] = [spam[0]], [spam[1]], [spam[2]]
    err = refuse(tmp_path, capsys, write_csv(tmp_path / "l.csv", rows), unlabeled)
    assert "(field 'tag'): fewer than 5 seeds of a class: 'spam' has 3 (lines 12, 52, 82)" in err


def test_too_few_seeds_after_sampling_says_raise_seeds(tmp_path, capsys, unlabeled):
    rows = [r for r in sms_rows("train", 600) if r["tag"] == "ham"][:300]
    rows += [r for r in sms_rows("train", 600) if r["tag"] == "spam"][:4]
    err = refuse(tmp_path, capsys, write_csv(tmp_path / "l.csv", rows), unlabeled, "--seeds", 50)
    assert "'spam' has 4" in err and "raise --seeds" in err


def test_missing_columns_list_the_ones_there_are(tmp_path, capsys, unlabeled):
    labeled = write_csv(tmp_path / "l.csv", sms_rows("train", 50))
    err = refuse(tmp_path, capsys, labeled, unlabeled, text="text", label="label")
    assert "l.csv:2 (field 'text'): no columns 'text', 'label'; the columns are ['body', 'tag']" in err


def test_unlabeled_without_the_text_column_is_refused(tmp_path, capsys):
    labeled = write_csv(tmp_path / "l.csv", sms_rows("train", 100))
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"message": "hi"}]), corpus)
    err = refuse(tmp_path, capsys, labeled, corpus)
    assert "c.parquet (field 'body'): no column 'body'; the columns are ['message']" in err


@pytest.mark.parametrize("case", ["bad-json", "missing", "not-parquet", "no-glob-match", "bad-bytes"])
def test_unreadable_files_are_refused_with_their_place(tmp_path, capsys, unlabeled, case):
    good = write_csv(tmp_path / "l.csv", sms_rows("train", 100))
    if case == "bad-json":
        path = tmp_path / "l.jsonl"
        path.write_text('{"body": "a", "tag": "x"}\n{"body": "b", "tag": \n')
        assert "l.jsonl:2: not valid JSON" in refuse(tmp_path, capsys, path, unlabeled)
    elif case == "missing":
        assert "nope.csv: data file not found" in refuse(tmp_path, capsys, tmp_path / "nope.csv", unlabeled)
    elif case == "not-parquet":
        path = tmp_path / "u.parquet"
        path.write_bytes(b"not parquet at all")
        assert "u.parquet: not a readable Parquet file" in refuse(tmp_path, capsys, good, path)
    elif case == "no-glob-match":
        assert "corpus/*.parquet: no file matches" in refuse(tmp_path, capsys, good, tmp_path / "corpus/*.parquet")
    else:
        path = tmp_path / "l2.jsonl"
        path.write_bytes(b'{"body": "a", "tag": "x"}\n{"body": "\xff\xfe", "tag": "y"}\n')
        assert "l2.jsonl:2: not UTF-8 text" in refuse(tmp_path, capsys, path, unlabeled)


def test_duplicate_ids_and_empty_labels_name_their_line(tmp_path, capsys, unlabeled):
    rows = [{"id": i, **r} for i, r in enumerate(sms_rows("train", 50))]
    rows[9]["id"] = 3
    err = refuse(tmp_path, capsys, write_jsonl(tmp_path / "l.jsonl", rows), unlabeled)
    assert "l.jsonl:10 (field 'id'): duplicate id 3 (first on line 4)" in err
    rows = sms_rows("train", 50)
    rows[4]["tag"] = ""
    err = refuse(tmp_path, capsys, write_csv(tmp_path / "l.csv", rows), unlabeled)
    assert "l.csv:6 (field 'tag'): empty label" in err


def test_an_existing_task_is_not_overwritten_without_force(tmp_path, capsys, unlabeled):
    labeled = write_csv(tmp_path / "l.csv", sms_rows("train", 100))
    args = ["--labeled", labeled, "--unlabeled", unlabeled, "--text-column", "body", "--label-column", "tag",
            "--out", tmp_path / "task"]
    assert init(*args, capsys=capsys)[0] == 0
    assert "task.yaml: already exists; pass --force" in refuse(tmp_path, capsys, labeled, unlabeled)
    assert init(*args, "--force", capsys=capsys)[0] == 0


def test_init_imports_nothing_heavy():
    heavy = ["torch", "sentence_transformers", "ray", "xllamacpp", "sklearn", "transformers"]
    code = ("import sys, lfagent.cli, lfagent.cli.init_cmd, lfagent.data.init_task; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
