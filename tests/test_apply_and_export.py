"""Declarative LFs: matching rules, the fast keyword path, and the editable export round trip."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lfagent import LabelingFunction, Provenance, load_lfs
from lfagent.sandbox.apply import apply_lfs, is_trusted, vote_column
from lfagent.errors import InputError
from lfagent.rundir.export import write_lf_module
from lfagent.task import TaskSpec

CLASSES = ["HAM", "SPAM"]


def kw(name, *words, label="SPAM"):
    return LabelingFunction(name=name, kind="keywords", label=label, keywords=list(words))


def test_keywords_match_whole_words_case_insensitively():
    lf = kw("sub", "subscribe", "check out")
    L = apply_lfs([lf], ["Please SUBSCRIBE!", "subscribers welcome", "Check   out my page", "checkout"], CLASSES).L
    assert L[:, 0].tolist() == [1, -1, 1, -1]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="abcKSsß İıkK x.!-'", max_size=30), min_size=1, max_size=20),
       words=st.lists(st.sampled_from(["ab", "k", "ss", "x x", "c!", "a-b", "kk"]), min_size=1, max_size=3))
def test_fast_keyword_path_agrees_with_plain_regex(texts, words):
    lf = kw("k1", *words)
    fast = vote_column(lf, texts, 1, None, [t.lower() for t in texts])
    plain = vote_column(lf, texts, 1, None)
    assert fast.tolist() == plain.tolist()


def test_embedding_lf_votes_above_threshold():
    proto = [1.0, 0.0]
    lf = LabelingFunction(name="e", kind="embedding", label="HAM", prototypes=[proto], threshold=0.8)
    emb = np.array([[1, 0], [0.6, 0.8], [0.9, 0.436]], dtype=np.float32)
    assert apply_lfs([lf], ["a", "b", "c"], CLASSES, embeddings=emb).L[:, 0].tolist() == [0, -1, 0]


def test_untrusted_regex_and_code_need_the_sandbox():
    llm_regex = LabelingFunction(name="r", kind="regex", label="SPAM", pattern="(a+)+$",
                                 provenance=Provenance(source="llm:keywords"))
    assert not is_trusted(llm_regex)
    with pytest.raises(ValueError, match="sandbox"):
        apply_lfs([llm_regex], ["aaaa"], CLASSES)


def test_lf_validation_names_the_missing_part():
    with pytest.raises(ValueError, match="keywords"):
        LabelingFunction(name="x", kind="keywords", label="SPAM")
    with pytest.raises(ValueError, match="bad regex"):
        LabelingFunction(name="x", kind="regex", label="SPAM", pattern="(")
    with pytest.raises(ValueError):
        LabelingFunction(name="not a name", kind="keywords", label="SPAM", keywords=["a"])


def test_export_round_trip_keeps_every_kind(tmp_path):
    code = 'import re\n\ndef label(record):\n    """Quotes \'\'\' and backslashes \\\\ survive."""\n    return "SPAM" if re.search(r"\\bwin\\b", record["text"]) else None\n'
    lfs = [kw("kw_spam", "check out", "subscribe"),
           LabelingFunction(name="rx", kind="regex", label="HAM", pattern=r"\bsong\b"),
           LabelingFunction(name="emb", kind="embedding", label="HAM", prototypes=[[0.6, 0.8]], threshold=0.5),
           LabelingFunction(name="code_lf", kind="code", label="SPAM", source=code,
                            provenance=Provenance(source="llm:code", detail="m", round=2))]
    task = TaskSpec(name="t", classes=CLASSES, seeds="s.jsonl")
    path = write_lf_module(tmp_path / "lfs.py", lfs, task=task, run_id="r1")
    text = path.read_text()
    assert "LFS = [" in text and "def label" in text
    back = load_lfs(path)
    assert [lf.model_dump() for lf in back] == [lf.model_dump() for lf in lfs]


def test_export_is_read_as_data_never_run(tmp_path):
    path = tmp_path / "evil.py"
    path.write_text("import os\nos.system('touch " + str(tmp_path / "pwned") + "')\nLFS = [__import__('os')]\n")
    with pytest.raises(InputError, match="plain data"):
        load_lfs(path)
    assert not (tmp_path / "pwned").exists()


def test_export_bad_entry_names_the_lf(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("LFS = [{'name': 'oops', 'kind': 'keywords', 'label': 'SPAM'}]\n")
    with pytest.raises(InputError, match="oops"):
        load_lfs(path)

