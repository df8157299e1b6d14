"""Progress: bars with count, rate and time left on a terminal; plain lines or nothing when piped."""
import io
import json
import subprocess
import sys


from conftest import EXAMPLE_TASK, REPO
from lfagent.counting import NullCounter, counter, reporter
from lfagent.cli.progress import Progress

ESC = "\x1b["


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_progress_prints_nothing_by_default():
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress("a message")
    with progress.count("embedding", 3) as count:
        count.advance(3)
    assert stream.getvalue() == ""


def test_asked_for_but_piped_gives_plain_lines_without_escape_codes():
    stream = io.StringIO()
    progress = Progress(True, stream=stream)
    progress("a message")
    with progress.count("embedding", 1000) as count:
        count.advance(400)
        count.advance(600)
    with progress.count("fitting", 6, unit="fits", summary=False) as count:
        count.advance(6)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and ESC not in stream.getvalue()
    assert lines[0].endswith("] a message")
    assert "embedding: 1,000 records in " in lines[1] and "records/s" in lines[1]


def test_a_terminal_gets_a_bar_with_count_rate_and_time_left():
    stream = FakeTerminal()
    progress = Progress(stream=stream)
    assert progress.enabled
    with progress.count("LLM calls", 4, unit="calls") as count:
        for _ in range(4):
            count.advance()
        progress("a line while the bar is up")
    out = stream.getvalue()
    assert ESC in out  # drawn with terminal codes (rich)
    assert "LLM calls" in out and "4/4" in out and "calls/s" in out and "left" in out
    assert "a line while the bar is up" in out
    assert out.rstrip().splitlines()[-1].split("] ", 1)[1].startswith("LLM calls: 4 calls in ")


def test_stages_reporting_to_a_plain_callable_or_none_get_a_silent_counter():
    said = []
    for progress in (None, said.append, lambda message: None):
        with counter(progress, "x", 10) as count:
            assert isinstance(count, NullCounter)
            count.advance(10)
    assert said == []
    stream = io.StringIO()
    shown = Progress(True, stream=stream)
    with counter(shown, "embedding", 10) as count:
        report = reporter(count)  # Embedder.encode's (done, total) callbacks
        report(4, 10)
        report(10, 10)
    assert "embedding: 10 records" in stream.getvalue()


def test_a_run_on_a_terminal_shows_bars_and_piped_shows_nothing(tmp_path):
    from lfagent.agent.run import run_agent

    stream = FakeTerminal()
    run_agent(EXAMPLE_TASK, tmp_path / "run", llm="none", embed=False, progress=Progress(stream=stream))
    out = stream.getvalue()
    assert "mining and fitting" in out and "6/6" in out and "fits/s" in out
    piped = subprocess.run([sys.executable, "-m", "lfagent.cli", "run", str(EXAMPLE_TASK), "--out",
                            str(tmp_path / "run2"), "--llm", "none", "--no-embeddings"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and ESC not in piped.stdout


def test_generate_counts_records_and_reports_no_steady_rate_from_one_batch(tmp_path):
    from lfagent.agent.run import run_agent
    from lfagent.cli import main
    from lfagent.generate import generate

    run_agent(EXAMPLE_TASK, tmp_path / "run", llm="none", embed=False)
    inputs = [str(EXAMPLE_TASK.parent / "unlabeled.jsonl")]
    stream = FakeTerminal()
    summary = generate(tmp_path / "run", inputs, tmp_path / "out.jsonl", progress=Progress(stream=stream))
    n = sum(1 for _ in open(inputs[0]))
    assert summary.rows_written == n
    assert f"{n}/{n}" in stream.getvalue() and f"labelling: {n:,} records in " in stream.getvalue()
    assert main(["generate", str(tmp_path / "run"), "--input", *inputs, "--out", str(tmp_path / "o2.jsonl"),
                 "--quiet"]) == 0


def test_generate_prints_a_steady_rate_only_when_it_was_measured(tmp_path, capsys):
    from lfagent.agent.run import run_agent
    from lfagent.cli import main

    run_agent(EXAMPLE_TASK, tmp_path / "run", llm="none", embed=False)
    source = str(EXAMPLE_TASK.parent / "unlabeled.jsonl")
    assert main(["generate", str(tmp_path / "run"), "--input", source, "--out", str(tmp_path / "a.jsonl")]) == 0
    one_batch = capsys.readouterr().out
    assert "; steady" not in one_batch and "records/s" in one_batch
    assert main(["generate", str(tmp_path / "run"), "--input", source, "--out", str(tmp_path / "b.jsonl"),
                 "--batch-size", "300"]) == 0
    assert "; steady " in capsys.readouterr().out


def test_sandbox_slices_give_the_votes_of_one_call_and_count_every_record(monkeypatch):
    import lfagent.sandbox.apply as apply
    from lfagent.lf import LabelingFunction
    from lfagent.sandbox import SandboxPool

    texts = [json.loads(line)["text"] for line in open(EXAMPLE_TASK.parent / "seeds.jsonl")]
    lfs = [LabelingFunction(name="sub", kind="code", label="SPAM",
                            source="def label(record):\n    return 'SPAM' if 'subscribe' in record['text'].lower() else None\n"),
           LabelingFunction(name="boom", kind="code", label="HAM",
                            source="def label(record):\n    if 'song' in record['text']:\n        return 1 / 0\n    return None\n")]
    with SandboxPool(workers=1) as pool:
        whole = apply.apply_lfs(lfs, texts, ["HAM", "SPAM"], pool=pool)
        monkeypatch.setattr(apply, "SANDBOX_SLICE", 7)
        stream = io.StringIO()
        sliced = apply.apply_lfs(lfs, texts, ["HAM", "SPAM"], pool=pool, progress=Progress(True, stream=stream))
    assert (whole.L == sliced.L).all() and set(whole.errors) == set(sliced.errors) == {"boom"}
    assert (sliced.L[:, 1] == -1).all() and (sliced.L[:, 0] == 1).any()
    assert f"sandbox: 2 code LFs: {len(texts)} records" in stream.getvalue()


def test_llm_calls_are_counted_as_each_ends_answered_or_failed():
    from llm_server import Fault, ScriptedLLMServer
    from lfagent.llm import Budget, ChatRequest
    from lfagent.llm.openai_compat import OpenAICompatLLM, RetryPolicy

    stream = io.StringIO()
    progress = Progress(True, stream=stream)
    with ScriptedLLMServer(["one", Fault("400"), "three"], default_reply="more") as srv, \
            OpenAICompatLLM("test-model", base_url=srv.base_url, api_key="sk-test", budget=Budget(max_calls=4),
                            retry=RetryPolicy(max_attempts=1)) as llm:
        with counter(progress, "LLM calls", 5, unit="calls") as count:
            replies = llm.chat_many([ChatRequest.from_prompt(f"q{i}") for i in range(5)], on_done=count.advance)
    assert sum(hasattr(r, "kind") for r in replies) == 2  # the 400, and the call past the budget
    assert "LLM calls: 5 calls in " in stream.getvalue()
