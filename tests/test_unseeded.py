"""A class the seeds miss is still a class: warned about, labelled from what can reach it, refused only when
nothing can (trec with every ABBR seed removed)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from lfagent.errors import InputError, UnseededClassWarning
from lfagent.fit.expert import expert_proba, fit_expert, join_experts
from lfagent.lf import LabelingFunction, Provenance
from lfagent.scoring import select_lfs

needs_data = pytest.mark.skipif(not (SHARED_DATA / "wrench-trec").is_dir(), reason="shared data not present")
TREC = {"DESC": "asks for a description, definition, manner or reason", "ENTY": "asks for an entity: a thing, "
        "animal, colour, food, product, term", "HUM": "asks for a person or group", "ABBR": "asks what an "
        "abbreviation or acronym stands for, or for the abbreviation of something", "LOC": "asks for a place",
        "NUM": "asks for a number, date, amount or duration"}
ABBR_CUES = re.compile(r"stand for|abbreviat|acronym|full form")


def trec_task(folder: Path, *, n_seeds: int = 100, n_unlabeled: int = 500, missing: str = "ABBR") -> Path:
    """trec from WRENCH: seeds drawn without any `missing` row; the unlabeled pool and test keep them."""
    names = json.loads((SHARED_DATA / "wrench-trec" / "label.json").read_text())
    rows = [{"id": f"r{i}", "text": v["data"]["text"], "label": names[str(v["label"])]}
            for i, v in enumerate(json.loads((SHARED_DATA / "wrench-trec" / "train.json").read_text()).values())]
    order = np.random.default_rng(0).permutation(len(rows))
    seeds = [rows[i] for i in order if rows[i]["label"] != missing][:n_seeds]
    used = {r["id"] for r in seeds}
    rest = [rows[i] for i in order if rows[i]["id"] not in used]
    unlabeled, test = rest[:n_unlabeled], rest[n_unlabeled:n_unlabeled + 300]
    folder.mkdir(parents=True)
    for name, part in (("seeds", seeds), ("unlabeled", unlabeled), ("test", test)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    classes = "\n".join(f"  - {{name: {c}, description: {json.dumps(d)}}}" for c, d in TREC.items())
    (folder / "task.yaml").write_text(f"name: trec\ndescription: the type of answer a question asks for\n"
                                      f"classes:\n{classes}\nseeds: seeds.jsonl\nunlabeled: unlabeled.jsonl\n"
                                      "test: test.jsonl\n")
    return folder / "task.yaml"


def abbr_rows(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids of the unlabeled rows, whether each is ABBR, and whether `abbr_lf` votes it."""
    rows = [json.loads(line) for line in (folder / "unlabeled.jsonl").read_text().splitlines()]
    voted = [any(k in r["text"].lower() for k in abbr_lf().keywords) for r in rows]
    return [r["id"] for r in rows], np.array([r["label"] == "ABBR" for r in rows]), np.array(voted)


def silver(run_dir: Path) -> dict:
    return {row["id"]: row for row in map(json.loads, (run_dir / "silver.jsonl").read_text().splitlines())}


def abbr_lf() -> LabelingFunction:
    return LabelingFunction(name="user_abbr", kind="keywords", label="ABBR",
                            keywords=["stand for", "abbreviation", "acronym"], provenance=Provenance(source="user"))


# -- the pure parts ------------------------------------------------------------------------------------

def test_expert_gives_an_unseen_class_its_prior_and_leaves_voted_rows_to_the_label_model():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 5))
    y = rng.integers(0, 2, 60)  # classes 0 and 1 seen, class 2 never
    emb[:, 0] += 2 * y
    prior = np.array([0.45, 0.45, 0.1])
    state = fit_expert(emb, y, False, 0, prior=prior)
    assert state.unseen == [2] and state.unseen_share == [0.1]
    p = expert_proba(state, emb[:4], 3)
    assert np.allclose(p[:, 2], 0.1) and np.allclose(p.sum(axis=1), 1)
    lm = np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0], [0.2, 0.7, 0.1]])
    covered = np.array([True, True, True, False])
    reached = np.array([[True], [False], [False], [False]])
    out = join_experts(lm, p, covered, False, "product", unseen=[2], reached=reached)
    assert out[0, 2] == pytest.approx(0.8) and out[0].sum() == pytest.approx(1)  # an LF votes it: the LM decides
    assert out[1, 2] < 0.5  # covered, but nothing votes it: the product with its small share
    assert np.allclose(out[3], p[3])  # uncovered: the expert, with the prior share
    assert np.allclose(out.sum(axis=1), 1)


def test_multilabel_expert_gives_a_class_without_positives_its_prior():
    emb = np.random.default_rng(1).normal(size=(20, 4))
    Y = np.zeros((20, 2), int)
    Y[:10, 0] = 1
    state = fit_expert(emb, Y, True, 0, prior=np.array([0.5, 0.02]))
    assert state.unseen == [1] and state.constant[1] == 0.02
    lm = np.full((3, 2), 0.9)
    out = join_experts(lm, expert_proba(state, emb[:3], 2), np.ones(3, bool), True, "product", unseen=[1],
                       reached=np.array([[True], [False], [False]]))
    assert out[0, 1] == pytest.approx(0.9) and out[1, 1] < 0.5


def test_selection_judges_an_lf_for_an_unseeded_class_by_its_false_positives():
    y = np.array([0, 1] * 50)  # class 2 has no seed
    L_seed = np.full((100, 3), -1)
    L_seed[:1, 1] = 2  # one misfire on a seed
    L_seed[:5, 2] = 2  # five misfires
    L_unl = np.full((400, 3), -1)
    L_unl[:40, 0] = 0
    L_unl[:20, 1] = 2  # 5% coverage
    L_unl[:20, 2] = 2
    names = ["lf_zero", "rare_ok", "rare_noisy"]
    sel = select_lfs(L_seed, y, L_unl, cardinality=3, names=names, lf_labels=[0, 2, 2], redundancy=2.0)
    assert "rare_ok" in sel.kept
    assert "all false positives" in sel.dropped["rare_noisy"]
    L_unl[:, 1] = -1
    L_unl[:1, 1] = 2  # coverage 0.25%: its one seed misfire (1%) would explain all of it
    sel = select_lfs(L_seed, y, L_unl, cardinality=3, names=names, lf_labels=[0, 2, 2], redundancy=2.0)
    assert "rare_ok" in sel.dropped


# -- runs ----------------------------------------------------------------------------------------------

@needs_data
def test_no_llm_and_no_lf_for_the_class_is_refused_naming_it(tmp_path):
    from lfagent.session import Session

    with pytest.warns(UnseededClassWarning, match="ABBR"):
        session = Session(trec_task(tmp_path / "task"), tmp_path / "run", llm="none", embed=False)
    with session, pytest.raises(InputError, match=r"\['ABBR'\] have no seed example.*--llm none no LF votes them"):
        session.fit()


@needs_data
@pytest.mark.slow
def test_a_user_lf_labels_the_class_the_seeds_miss(tmp_path):
    from lfagent.session import Session

    task = trec_task(tmp_path / "task")
    with pytest.warns(UnseededClassWarning, match=r"no example of class\(es\) \['ABBR'\]"):
        session = Session(task, tmp_path / "run", llm="none")
    with session:
        session.add_lf(abbr_lf())
        session.fit()
        assert {r["name"]: r["status"] for r in session.lfs}["user_abbr"] == "kept"
        session.write_outputs()
    ids, is_abbr, votes = abbr_rows(tmp_path / "task")
    rows = silver(tmp_path / "run")
    voted = [i for i, v in zip(ids, votes) if v]
    assert len(voted) >= 5
    assert all(rows[i]["label"] == "ABBR" for i in voted)  # the expert, which never saw ABBR, does not veto it
    found = [rows[i]["label"] == "ABBR" for i, a in zip(ids, is_abbr) if a]
    assert np.mean(found) >= 0.5
    assert sum(r["label"] == "ABBR" for r in rows.values()) <= 2 * len(voted)  # not everywhere
    card = (tmp_path / "run").joinpath("CARD.md")
    from lfagent.report import write_run_card

    write_run_card(tmp_path / "run")
    assert "the seeds have no example of ABBR" in card.read_text()


ABBR_CODE = '''```python
def label(record):
    if "stand for" in record["text"].lower():
        return "ABBR"
    return None
```'''


def knowing_responder(truth: dict[str, str]):
    """A scripted LLM that knows ABBR's cues and, asked to label records, their true class."""
    from agent_script import last_user
    from llm_server import Fault

    def respond(body: dict):
        prompt = last_user(body)
        if "No labelled example of class ABBR" in prompt:
            return '["stand for", "abbreviation", "acronym"]'
        if "labeling guideline" in prompt:
            return "- ABBR: asks what the letters of a short form stand for."
        if "Write a Python function" in prompt:
            return ABBR_CODE if 'returns "ABBR" when' in prompt else Fault("garbage")
        if "Label each record" in prompt:
            records = re.findall(r"^(\d+)\. (.*)$", prompt.split("Records:\n", 1)[1].split("\n\n", 1)[0], re.M)
            return "\n".join(f"{n}. {truth.get(' '.join(text.split()).lower(), 'DESC')}" for n, text in records)
        return "[]"
    return respond


@needs_data
@pytest.mark.slow
def test_the_agent_labels_the_missing_class_from_the_llms_keywords(tmp_path, monkeypatch):
    from agent_script import last_user
    from llm_server import ScriptedLLMServer
    from lfagent.agent.run import run_agent
    from lfagent.rundir.store import RunStore

    task = trec_task(tmp_path / "task", n_unlabeled=400)
    truth = {" ".join(r["text"].split()).lower(): r["label"] for name in ("seeds", "unlabeled")
             for r in map(json.loads, (tmp_path / "task" / f"{name}.jsonl").read_text().splitlines())}
    run_dir = tmp_path / "run"
    with ScriptedLLMServer(responder=knowing_responder(truth)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        with pytest.warns(UnseededClassWarning, match="ABBR"):
            run_agent(task, run_dir, llm="openai:test-model", rounds=1, annotate=40)
        prompts = [last_user(b) for b in server.requests]
    assert any("No labelled example of class ABBR" in p for p in prompts)
    assert not any("No labelled example of class HUM" in p for p in prompts)  # seeded classes copy from seeds
    status = {lf.name: (lf, s, why) for lf, s, _, why in RunStore(run_dir).lfs()}
    kept = [lf for lf, s, _ in status.values() if s == "kept" and lf.label == "ABBR"]
    assert any(lf.provenance.source == "llm:keywords" for lf in kept), {n: (s, w) for n, (_, s, w) in status.items()}
    assert status["llm_annotations"][1] == "kept"  # the LLM's record labels, ABBR among them, are a source too
    ids, is_abbr, votes = abbr_rows(tmp_path / "task")
    rows = silver(run_dir)
    assert np.mean([rows[i]["label"] == "ABBR" for i, a in zip(ids, is_abbr) if a]) >= 0.5
    assert "the seeds have no example of ABBR" in (run_dir / "CARD.md").read_text()


# -- the command line -------------------------------------------------------------------------------------

@needs_data
def test_init_keeps_a_declared_class_without_rows_and_run_refuses_it_without_an_llm(tmp_path, capsys, monkeypatch):
    """The held-out relation case, small: the labelled file has no row of a class the task declares."""
    from lfagent.cli import main

    rows = [json.loads(line) for line in trec_task(tmp_path / "src").parent.joinpath("seeds.jsonl")
            .read_text().splitlines()]
    (tmp_path / "labeled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    names = ",".join(TREC)
    assert main(["init", "--labeled", str(tmp_path / "labeled.jsonl"), "--unlabeled",
                 str(tmp_path / "src" / "unlabeled.jsonl"), "--text-column", "text", "--label-column", "label",
                 "--out", str(tmp_path / "task"), "--classes", names]) == 0
    out = capsys.readouterr().out
    assert "warning: no labelled row carries 'ABBR'" in out and "  ABBR: 0" in out
    written = (tmp_path / "task" / "task.yaml").read_text()
    assert re.search(r"name: \"?ABBR\"?, +description: \"\"\}  # 0 seeds", written)
    # A label outside --classes is refused, naming it.
    assert main(["init", "--labeled", str(tmp_path / "labeled.jsonl"), "--unlabeled",
                 str(tmp_path / "src" / "unlabeled.jsonl"), "--text-column", "text", "--label-column", "label",
                 "--out", str(tmp_path / "other"), "--classes", names.replace("HUM,", "")]) == 2
    assert "label(s) ['HUM'] are not among --classes" in capsys.readouterr().err

    def no_embedding(self):
        raise AssertionError("embedded the data of a run it was going to refuse")

    monkeypatch.setattr("lfagent.session.Session._build_corpus", no_embedding)
    code = main(["run", str(tmp_path / "task" / "task.yaml"), "--out", str(tmp_path / "run"), "--llm", "none",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "lfagent run: warning: the seeds have no example of class(es) ['ABBR']" in err  # one line, once
    assert err.count("warning:") == 1 and "Traceback" not in err
    assert "lfagent run: error:" in err and "['ABBR'] have no seed example" in err


@needs_data
@pytest.mark.slow
def test_run_from_the_command_line_with_an_llm_warns_and_says_so_in_the_card(tmp_path, capsys, monkeypatch):
    from llm_server import ScriptedLLMServer
    from lfagent.cli import main

    task = trec_task(tmp_path / "task", n_unlabeled=300)
    with ScriptedLLMServer(responder=knowing_responder({})) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        code = main(["run", str(task), "--out", str(tmp_path / "run"), "--llm", "openai:test-model", "--rounds", "1",
                     "--annotate", "0", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "lfagent run: warning: the seeds have no example of class(es) ['ABBR']" in err
    assert "**Warning:** the seeds have no example of ABBR" in (tmp_path / "run" / "CARD.md").read_text()
    from lfagent.report.html import write_report

    html = Path(write_report(tmp_path / "run", tmp_path / "report.html", embeddings=False)).read_text()
    assert "Warning: the seeds have no example of ABBR" in html


@pytest.mark.slow
def test_multi_label_a_class_without_positive_seeds_is_labelled_where_its_lf_votes(tmp_path):
    from conftest import goemotions_task
    from lfagent.session import Session

    task = goemotions_task(tmp_path / "task", n_seeds=150, n_unlabeled=400)
    seeds = [json.loads(line) for line in (tmp_path / "task" / "seeds.jsonl").read_text().splitlines()]
    kept = [r for r in seeds if "love" not in r["label"]]
    (tmp_path / "task" / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    with pytest.warns(UnseededClassWarning, match="love"):
        session = Session(task, tmp_path / "run", llm="none")
    with session:
        session.fit()  # multi-label: a class nothing votes is never on; no refusal
        session.add_lf(LabelingFunction(name="user_love", kind="keywords", label="love", keywords=["love"],
                                        provenance=Provenance(source="user")))
        session.fit()
        assert {r["name"]: r["status"] for r in session.lfs}["user_love"] == "kept"
        session.write_outputs()
    rows = [json.loads(line) for line in (tmp_path / "run" / "silver.jsonl").read_text().splitlines()]
    texts = [json.loads(line)["text"] for line in (tmp_path / "task" / "unlabeled.jsonl").read_text().splitlines()]
    voted = [i for i, text in enumerate(texts) if re.search(r"\blove\b", text.lower())]
    assert len(voted) >= 20
    assert np.mean(["love" in rows[i]["labels"] for i in voted]) >= 0.8
    assert all("love" not in r["labels"] for i, r in enumerate(rows) if i not in set(voted))
