"""`lfagent lf apply`: votes file, exit codes, reasons naming the LF, never a hang or a traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lfagent.cli import main as cli_main

SPAM = ('"""Spam cues."""\nimport re\nLABEL = "SPAM"\n\ndef label(record):\n'
        '    return "SPAM" if re.search(r"check out|subscribe", record["text"], re.I) else None\n')


@pytest.fixture()
def data(tmp_path):
    rows = [{"id": "a", "text": "check out my channel"}, {"text": "nice song", "label": "HAM"},
            {"id": 7, "text": "please SUBSCRIBE"}]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_lf(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return str(path)


def read_votes(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_apply_writes_one_line_per_record(tmp_path, data, capsys):
    out = tmp_path / "votes.jsonl"
    code = cli_main(["lf", "apply", write_lf(tmp_path, "spam", SPAM), "--input", str(data), "--out", str(out),
                     "--classes", "HAM,SPAM"])
    assert code == 0
    assert read_votes(out) == [{"id": "a", "votes": {"spam": "SPAM"}}, {"id": 1, "votes": {"spam": None}},
                               {"id": 7, "votes": {"spam": "SPAM"}}]


def test_rejected_lfs_give_exit_1_reasons_and_the_others_still_vote(tmp_path, data, capsys):
    out = tmp_path / "votes.jsonl"
    files = [write_lf(tmp_path, "spam", SPAM),
             write_lf(tmp_path, "evil", "import os\ndef label(record):\n    return None\n"),
             write_lf(tmp_path, "wrong_class", 'def label(record):\n    return "EGGS"\n'),
             write_lf(tmp_path, "hangs", "def label(record):\n    while True:\n        pass\n")]
    code = cli_main(["lf", "apply", *files, "--input", str(data), "--out", str(out), "--classes", "HAM,SPAM",
                     "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "LF 'evil' rejected: line 1: import of 'os'" in err
    assert "LF 'wrong_class' rejected" in err and "'EGGS'" in err
    assert "LF 'hangs' rejected: sandbox: timed out" in err
    assert [row["votes"] for row in read_votes(out)] == [{"spam": "SPAM"}, {"spam": None}, {"spam": "SPAM"}]


def test_task_file_sets_classes_text_field_and_hides_the_gold_label(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("CID,CONTENT,CLASS\nx1,Subscribe to me,1\nx2,great song,0\n")
    (tmp_path / "task.yaml").write_text("name: yt\nclasses: [HAM, SPAM]\ntext_field: CONTENT\n"
                                        "label_field: CLASS\nid_field: CID\nseeds: d.csv\n")
    peek = write_lf(tmp_path, "peek", 'def label(record):\n    return "SPAM" if "CLASS" in record else None\n')
    out = tmp_path / "v.jsonl"
    code = cli_main(["lf", "apply", write_lf(tmp_path, "spam", SPAM), peek, "--input", str(data),
                     "--out", str(out), "--task", str(tmp_path / "task.yaml")])
    assert code == 0
    assert read_votes(out) == [{"id": "x1", "votes": {"spam": "SPAM", "peek": None}},
                               {"id": "x2", "votes": {"spam": None, "peek": None}}]


def test_without_classes_any_short_string_is_a_vote(tmp_path, data):
    out = tmp_path / "v.jsonl"
    echo = write_lf(tmp_path, "first_word", 'def label(record):\n    return record["text"].split()[0]\n')
    assert cli_main(["lf", "apply", echo, "--input", str(data), "--out", str(out)]) == 0
    assert [r["votes"]["first_word"] for r in read_votes(out)] == ["check", "nice", "please"]


def test_usage_errors_are_one_line_exit_2(tmp_path, data, capsys):
    out = str(tmp_path / "v.jsonl")
    assert cli_main(["lf", "apply", str(tmp_path / "nope.py"), "--input", str(data), "--out", out]) == 2
    assert cli_main(["lf", "apply", write_lf(tmp_path, "spam", SPAM), "--input", str(tmp_path / "no.jsonl"),
                     "--out", out]) == 2
    assert cli_main(["lf", "apply", write_lf(tmp_path, "spam", SPAM), "--input", str(data), "--out", out,
                     "--classes", ","]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 3


@pytest.mark.parametrize("name,source,fragment", [
    ("reads_passwd", "def label(record):\n    return open('/etc/passwd').read()\n", "'open'"),
    ("escapes", "def label(record):\n    return ().__class__.__bases__[0].__subclasses__()\n", "'__class__'"),
    ("exits", "def label(record):\n    raise SystemExit(3)\n", "SystemExit"),
    ("hostile", "class S(str):\n    def __eq__(s, o):\n        return True\ndef label(record):\n    return S('SPAM')\n",
     "class definitions"),
    ("not_python", "\x00\x01 binary junk", "rejected"),
])
def test_hostile_lf_through_the_real_command(tmp_path, data, name, source, fragment):
    out = tmp_path / "v.jsonl"
    done = subprocess.run([sys.executable, "-m", "lfagent.cli", "lf", "apply", write_lf(tmp_path, name, source),
                           "--input", str(data), "--out", str(out), "--classes", "HAM,SPAM", "--timeout", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"LF {name!r} rejected" in done.stderr and fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert [row["votes"] for row in read_votes(out)] == [{}, {}, {}]
