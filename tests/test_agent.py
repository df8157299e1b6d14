"""The agent loop against a scripted OpenAI-compatible server on loopback (the real client path)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_script import respond
from conftest import EXAMPLE_TASK
from llm_server import Fault, ScriptedLLMServer
from lfagent.agent import run_agent
from lfagent.store import RunStore

pytestmark = pytest.mark.slow


def small_task(tmp_path: Path, n_unlabeled: int = 300) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    src = EXAMPLE_TASK.parent
    (folder / "seeds.jsonl").write_text((src / "seeds.jsonl").read_text())
    lines = (src / "unlabeled.jsonl").read_text().splitlines()[:n_unlabeled]
    (folder / "unlabeled.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "test.jsonl").write_text("\n".join((src / "test.jsonl").read_text().splitlines()[:200]) + "\n")
    (folder / "task.yaml").write_text((src / "task.yaml").read_text())
    return folder / "task.yaml"


@pytest.fixture
def server(monkeypatch):
    with ScriptedLLMServer(responder=respond) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield srv


def test_agent_keeps_good_llm_lfs_and_rejects_bad_ones_with_reasons(tmp_path, server):
    # Faults first: the client must retry through them (429, 500, garbage body, truncated JSON).
    server.push(Fault("429", retry_after=0.01), Fault("500"), Fault("garbage"), Fault("truncated"))
    run_dir = tmp_path / "run"
    summary = run_agent(small_task(tmp_path), run_dir, llm="openai:test-model", rounds=2, prices=(1000.0, 2000.0))
    store = RunStore(run_dir)
    lfs = {lf.name: (lf, status) for lf, status, _, _ in store.lfs()}
    llm_lfs = {name: v for name, v in lfs.items() if v[0].provenance.source.startswith("llm")}
    kept_llm = [name for name, (_, status) in llm_lfs.items() if status == "kept"]
    assert kept_llm, f"no LLM LF kept: {llm_lfs}"
    assert any(v[0].provenance.source == "llm:code" and v[0].label == "SPAM" for v in llm_lfs.values())
    reasons = " | ".join(r["reason"] for r in store.rejections())
    assert "lint" in reasons and "os" in reasons  # the hostile reply
    assert "unknown class 'EGGS'" in reasons
    assert "not in the text it was copied from" in reasons
    # Inverted logic (returns HAM on spam cues) is labelled by what it returns, then judged by scoring.
    inverted = [v for v in llm_lfs.values() if v[0].kind == "code" and v[0].label == "HAM"]
    assert all(status != "kept" for _, status in inverted)
    assert summary["llm"]["calls"] >= 4
    assert (run_dir / "silver.jsonl").is_file()
    rounds = store.rounds()
    assert [r["round"] for r in rounds if r["status"] == "done"][:2] == [0, 1]
    usage = store.llm_usage()
    assert usage["calls"] == summary["llm"]["calls"]
    expected = (usage["prompt_tokens"] * 1000.0 + usage["completion_tokens"] * 2000.0) / 1e6
    assert usage["cost"] == pytest.approx(expected) and usage["cost"] > 0


def test_budget_stops_the_loop(tmp_path, server):
    run_dir = tmp_path / "run"
    run_agent(small_task(tmp_path), run_dir, llm="openai:test-model", rounds=5, max_llm_calls=3, embed=False)
    assert server.chat_count <= 3 + 4  # +retries would show as extra requests; there are no faults here
    assert RunStore(run_dir).llm_usage()["calls"] <= 3


def test_resume_pays_no_call_twice(tmp_path, server):
    task = small_task(tmp_path)
    run_dir = tmp_path / "run"
    run_agent(task, run_dir, llm="openai:test-model", rounds=1, embed=False)
    first = server.chat_count
    bodies = [json.dumps(b, sort_keys=True) for b in server.requests]
    run_agent(task, run_dir, llm="openai:test-model", rounds=2, embed=False)
    new = [json.dumps(b, sort_keys=True) for b in server.requests[first:]]
    assert new, "round 2 asked nothing"
    assert not set(new) & set(bodies), "a request from round 1 was sent again"


def test_kill_9_then_resume_loses_nothing(tmp_path, monkeypatch):
    """A real `lfagent run` killed with SIGKILL mid-run; `--resume` finishes without re-paying calls."""
    from llm_server import Reply

    def slow_respond(body):
        return Reply(text=str(respond(body)) if not isinstance(respond(body), Fault) else "x", delay=0.4)

    with ScriptedLLMServer(responder=slow_respond) as srv:
        env = {**os.environ, "OPENAI_BASE_URL": srv.base_url, "OPENAI_API_KEY": "k"}
        task, run_dir = small_task(tmp_path), tmp_path / "run"
        cmd = [sys.executable, "-m", "lfagent.cli", "run", str(task), "--out", str(run_dir),
               "--llm", "openai:test-model", "--rounds", "3", "--no-embeddings", "--quiet"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while srv.chat_count < 4 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = [json.dumps(b, sort_keys=True) for b in srv.requests]
        assert before, "the run never reached the LLM"
        resumed = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", "--resume", str(run_dir), "--quiet"],
                                 env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        after = [json.dumps(b, sort_keys=True) for b in srv.requests[len(before):]]
        answered_before = before[:-2]  # the last one or two may have been in flight at the kill
        assert not set(after) & set(answered_before)
        assert (run_dir / "silver.jsonl").is_file()
        store = RunStore(run_dir)
        assert {r["round"] for r in store.rounds() if r["status"] == "done"} >= {0}


def test_rounds_that_do_not_improve_are_rolled_back(tmp_path):
    from lfagent import LabelingFunction, Provenance, Session
    from lfagent.loop import _roll_back_to_best_round

    with Session(small_task(tmp_path), tmp_path / "run", llm="none", embed=False) as session:
        early = LabelingFunction(name="llm_kw_spam_a", kind="keywords", label="SPAM", keywords=["subscribe"],
                                 provenance=Provenance(source="llm:keywords", round=1))
        late = LabelingFunction(name="llm_kw_spam_b", kind="keywords", label="SPAM", keywords=["the"],
                                provenance=Provenance(source="llm:keywords", round=2))
        session.add_lf(early)
        session.add_lf(late)
        for round_, accuracy in ((0, 0.85), (1, 0.90), (2, 0.88), (3, 0.88)):
            session.store.start_round(round_)
            session.store.finish_round(round_, {"seed_accuracy": accuracy})
        assert _roll_back_to_best_round(session)  # rounds 2 and 3 tie with each other, both below round 1
        pins = {lf.name: pinned for lf, _, pinned, _ in session.store.lfs()}
        assert pins == {"llm_kw_spam_a": None, "llm_kw_spam_b": "drop"}
        session.fit()
        row = next(r for r in session.lfs if r["name"] == "llm_kw_spam_b")
        assert row["status"] == "dropped" and "did not improve" in row["reason"]


def test_a_round_that_ties_the_best_keeps_its_lfs(tmp_path):
    from lfagent import Session
    from lfagent.loop import _roll_back_to_best_round

    with Session(small_task(tmp_path), tmp_path / "run", llm="none", embed=False) as session:
        for round_, accuracy in ((0, 0.90), (1, 0.90)):
            session.store.start_round(round_)
            session.store.finish_round(round_, {"seed_accuracy": accuracy})
        assert not _roll_back_to_best_round(session)
