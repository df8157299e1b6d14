"""The agent loop against a scripted OpenAI-compatible server on loopback (the real client path)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_script import INVERTED_HAM_CODE, last_user, respond
from conftest import example_subset
from llm_server import Fault, ScriptedLLMServer
from lfagent.agent.run import run_agent
from lfagent.lf import text_key
from lfagent.rundir.store import RunStore

pytestmark = pytest.mark.slow


def small_task(tmp_path: Path, n_unlabeled: int = 300, *, test: bool = True) -> Path:
    """The example task with fewer unlabeled rows, and 200 test rows or (test=False) none."""
    return example_subset(tmp_path / "task", n_unlabeled=n_unlabeled, n_test=200 if test else 0)


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
    spent = summary["llm"]
    card = (run_dir / "CARD.md").read_text()  # the card says what the run paid
    assert f"| LLM spent | {spent['calls']} calls, {spent['prompt_tokens'] + spent['completion_tokens']} tokens, " \
           f"${spent['cost']:.4f} |" in card and spent["cost"] > 0
    # Every LLM LF remembers the seeds its prompt showed; its seed figures leave them out.
    seeds = [json.loads(line)["text"] for line in (tmp_path / "task" / "seeds.jsonl").read_text().splitlines()]
    keys = {text_key(t) for t in seeds}
    # (The LLM's record labels, llm_annotations, and its recalled cues were asked without any seed text: they
    # show none, and every seed vote of theirs counts.)
    assert all(v[0].provenance.shown and set(v[0].provenance.shown) <= keys for v in llm_lfs.values()
               if v[0].kind != "lookup" and v[0].provenance.source != "llm:recall")
    recalled = {name: v for name, v in llm_lfs.items() if v[0].provenance.source == "llm:recall"}
    assert recalled and not any(v[0].provenance.shown for v in recalled.values())
    assert any(v[0].kind == "regex" for v in recalled.values())  # a recalled pattern, run in the sandbox
    assert "recalled pattern '(a|': not a valid regular expression" in reasons
    # The spam words offered for HAM are out, each with its reason.
    ham_recalled = [name for name, v in recalled.items() if v[0].label == "HAM"]
    assert ham_recalled and all(lfs[name][1] == "dropped" for name in ham_recalled)
    why = {lf.name: reason for lf, _, _, reason in store.lfs()}
    assert all(why[name] for name in ham_recalled)
    copied = next(v[0] for v in llm_lfs.values() if v[0].provenance.source == "llm:keywords")
    stats = {s["name"]: s for s in json.loads((run_dir / "candidates.json").read_text())}[copied.name]["stats"]
    shown_rows = [i for i, t in enumerate(seeds) if text_key(t) in copied.provenance.shown]
    voted = [i for i, t in enumerate(seeds) if copied.keywords[0].lower() in t.lower()]
    assert shown_rows and set(shown_rows) <= set(voted)  # it matches the text it was copied from...
    assert stats["seed_votes"] <= len(voted) - len(shown_rows)  # ...which does not count as a seed vote
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
    # No record annotation: by default it would label this whole small pool, leaving the code LF nothing to
    # add (annotation's own resume is in test_annotate.py).
    run_agent(task, run_dir, llm="openai:test-model", rounds=1, embed=False, annotate=0)
    first = server.chat_count
    bodies = [json.dumps(b, sort_keys=True) for b in server.requests]
    run_agent(task, run_dir, llm="openai:test-model", rounds=2, embed=False, annotate=0)
    new = [json.dumps(b, sort_keys=True) for b in server.requests[first:]]
    assert new, "round 2 asked nothing"
    assert not set(new) & set(bodies), "a request from round 1 was sent again"
    # Round 1 kept its SPAM code LF, so round 2 asks for code again.
    assert any(_asks_code(b) for b in server.requests[first:])
    # The guideline is asked once; its restating line is dropped with the reason, the others reach later
    # prompts, including those of the resumed run.
    [event] = [e["data"] for e in RunStore(run_dir).events("guideline")]
    assert [d["reason"] for d in event["dropped"]] == ["restates the class descriptions the prompts already carry"]
    assert sum("labeling guideline" in last_user(b) for b in server.requests) == 1
    guided = [last_user(b) for b in server.requests[first:] if "Guideline:" in last_user(b)]
    sections = {p.split("Guideline:\n", 1)[1].split("\n\n", 1)[0] for p in guided}
    assert sections == {"- SPAM: asks to subscribe, visit, or check out something.\n- HAM: talks about the song."}


def _asks_code(body: dict) -> bool:
    return "Write a Python function" in last_user(body)


def test_no_code_requests_after_a_round_whose_code_lfs_were_all_dropped(tmp_path, monkeypatch):
    def junk_code(body):  # every code LF (and every refinement) is the inverted one: never kept
        prompt = last_user(body)
        if "Write a Python function" in prompt or "Rewrite `label(record)`" in prompt:
            return INVERTED_HAM_CODE
        return respond(body)

    with ScriptedLLMServer(responder=junk_code) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        task, run_dir = small_task(tmp_path), tmp_path / "run"
        run_agent(task, run_dir, llm="openai:test-model", rounds=1, embed=False)
        first = srv.chat_count
        assert sum(map(_asks_code, srv.requests)) == 2  # round 1: one per class
        run_agent(task, run_dir, llm="openai:test-model", rounds=2, embed=False)
        later = srv.requests[first:]
    assert later and not any(map(_asks_code, later))
    assert any("Which words or short phrases" in last_user(b) for b in later)  # keywords still asked


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


def test_new_llm_lfs_are_judged_inside_each_fold_and_old_screens_still_hold(tmp_path):
    from lfagent import LabelingFunction, Provenance, Session

    with Session(small_task(tmp_path), tmp_path / "run", llm="none", embed=False) as session:
        good = LabelingFunction(name="llm_code_spam_good", kind="regex", label="SPAM",
                                pattern=r"check (out )?my|subscribe|my channel|https?://",
                                provenance=Provenance(source="llm:code", round=1))
        # Votes SPAM on ham comments about the song: the model without it puts those records in HAM.
        bad = LabelingFunction(name="llm_rc_spam_song", kind="keywords", label="SPAM", keywords=["song", "love"],
                               provenance=Provenance(source="llm:recall", round=1))
        session.add_lf(good)
        session.add_lf(bad)
        session.fit()
        result = session.result
        # No screen on all the seeds: each fold judges them with its own seeds and unlabeled votes.
        assert all(bad.name not in kept for kept in result.fold_kept)
        assert sum(good.name in kept for kept in result.fold_kept) >= 4
        assert good.name in {lf.name for lf in result.final.lfs}
        assert "disagrees with the current model" in result.final.reason(bad.name)
        assert session.store.get_meta("screened_out") is None
        # A run made before keeps what its screen dropped; the user's pin still wins over it.
        session.store.set_meta("screened_out", {good.name: "lowered the cross-fitted seed accuracy (0.90 -> 0.88)"})
        session.fit()
        row = next(row for row in session.lfs if row["name"] == good.name)
        assert row["status"] == "dropped" and "lowered the cross-fitted" in row["reason"]
        session.keep(good.name)
        session.fit()
        assert good.name in {lf.name for lf in session.result.final.lfs}


def test_the_llm_keywords_and_not_its_code_are_held_to_the_keyword_bar_when_judged_by_agreement(tmp_path,
                                                                                                 monkeypatch):
    from lfagent import LabelingFunction, Provenance, Session
    from lfagent.fit import fold_fit

    seen: list[frozenset] = []
    real = fold_fit.agreement_with_model

    def spy(L_unl, probs, names, **kwargs):
        seen.append(frozenset(kwargs.get("keywords", ())))
        return real(L_unl, probs, names, **kwargs)

    monkeypatch.setattr(fold_fit, "agreement_with_model", spy)
    with Session(small_task(tmp_path), tmp_path / "run", llm="none", embed=False) as session:
        for source, kind in (("llm:recall", "keywords"), ("llm:keywords", "keywords"), ("llm:code", "regex")):
            extra = {"keywords": ["song"]} if kind == "keywords" else {"pattern": "song"}
            session.add_lf(LabelingFunction(name=f"{source.replace(':', '_')}_ham_song", kind=kind, label="HAM",
                                            provenance=Provenance(source=source, round=1), **extra))
        session.fit()
    assert seen and all(keywords == {"llm_recall_ham_song", "llm_keywords_ham_song"} for keywords in seen)
