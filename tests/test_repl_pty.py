"""The real `lfagent repl` in a pseudo-terminal (pexpect): prompt_toolkit, Ctrl-C, Ctrl-D, resuming a run."""
import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import Reply, ScriptedLLMServer  # noqa: E402
from test_repl import small_task  # noqa: E402

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
PROMPT = "lfagent>"
SPAM_CODE_REPLY = ("```python\nimport re\n\ndef label(record):\n"
                   "    if re.search(r'subscribe|check out|my channel', record['text'], re.I):\n"
                   "        return 'SPAM'\n    return None\n```")


def spawn(task: Path, run_dir: Path, *extra: str, env=None) -> pexpect.spawn:
    args = ["-m", "lfagent.cli", "repl", str(task), "--run", str(run_dir), "--no-embeddings", *extra]
    child = pexpect.spawn(sys.executable, args, encoding="utf-8", dimensions=(60, 220), timeout=90, env=env,
                          cwd=str(task.parent))
    child.expect("type `help` for commands")  # the start-up fit is done
    child.expect(PROMPT)
    return child


def run(child: pexpect.spawn, line: str, expect: str, timeout: float = 90) -> str:
    """Send a command, wait for `expect` (regex) in its output, then for the next prompt; the output."""
    child.sendline(line)
    if child.expect([expect, r"error: [^\r\n]*"], timeout=timeout) == 1:
        raise AssertionError(f"{line!r} failed: {ANSI.sub('', child.after)}")
    seen = child.before + child.after
    child.expect(PROMPT, timeout=timeout)
    return ANSI.sub("", seen + child.before)


def leave(child: pexpect.spawn, how: str = "quit") -> int:
    if how == "quit":
        child.sendline("quit")
    else:
        child.sendeof()
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    return child.exitstatus


def lf_rows(output: str) -> dict[str, str]:
    """name -> status from an `lfs` table."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 8 and cells[1] and cells[1] != "name":
            rows[cells[1]] = cells[7]
    return rows


@pytest.fixture
def env():
    environment = dict(os.environ)
    environment.update({"EDITOR": "true", "TERM": "xterm", "PYTHONUNBUFFERED": "1"})
    return environment


def test_llm_none_session_persists_and_resumes(tmp_path, env):
    task = small_task(tmp_path / "task")
    run_dir = tmp_path / "run"
    child = spawn(task, run_dir, "--llm", "none", env=env)
    before = lf_rows(run(child, "lfs", r"LFs, \d+ kept"))
    assert "kept" in before.values() and "dropped" in before.values()
    victim = next(name for name, status in before.items() if status == "kept" and name.startswith("kw_"))
    rescued = next(name for name, status in before.items() if status == "dropped" and name.startswith("kw_"))
    assert "did you mean" in run(child, f"drop {victim}x", "error: no LF named")
    run(child, f"drop {victim}", "pinned")
    run(child, f"keep {rescued}", "pinned")
    run(child, "fit", "seed accuracy")
    after = lf_rows(run(child, "lfs", r"LFs, \d+ kept"))
    assert after[victim] == "dropped" and after[rescued] == "kept"
    assert "test" in run(child, "eval", "cross-fitted on the seeds")
    labelled = run(child, 'label "check out my channel and subscribe"', "probabilities")
    assert "SPAM" in labelled and "kept LFs voted" in labelled
    out = run(child, "export my_lfs.py", "wrote")
    assert (task.parent / "my_lfs.py").is_file() and "my_lfs.py" in out
    assert "unknown command" in run(child, "frobnicate", "error")
    assert leave(child, "quit") == 0

    again = spawn(task, run_dir, "--llm", "none", env=env)
    assert lf_rows(run(again, "lfs", r"LFs, \d+ kept")) == after
    status = run(again, "status", "last fit")
    assert "1 drop" in status and "1 keep" in status
    assert leave(again, "eof") == 0
    history = (run_dir / "repl_history").read_text()
    assert f"drop {victim}" in history and "status" in history


def test_ctrl_c_during_propose_returns_to_the_prompt(tmp_path, env):
    task = small_task(tmp_path / "task")
    run_dir = tmp_path / "run"
    slow = 40.0
    with ScriptedLLMServer([Reply(SPAM_CODE_REPLY)], default_reply=SPAM_CODE_REPLY) as server:
        env.update({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test-key"})
        child = spawn(task, run_dir, "--llm", "openai:test-model", env=env)
        out = run(child, "propose 1 --class SPAM", r"new LFs after fitting")
        assert "1 added" in out
        added = list(lf_rows(out))
        assert added and server.chat_count >= 1
        server.push(*[Reply(SPAM_CODE_REPLY.replace("subscribe", "free"), delay=slow) for _ in range(4)])
        child.sendline("propose 1 --class SPAM --kind code")
        child.expect("asking the LLM|propose", timeout=30)
        deadline = time.monotonic() + 30
        while server.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.in_flight >= 1, "the slow request never reached the server"
        interrupted_at = time.monotonic()
        child.sendintr()
        child.expect("interrupted", timeout=15)
        child.expect(PROMPT, timeout=15)
        # The prompt answers while the slow request is still held by the server.
        rows = lf_rows(run(child, "lfs", r"LFs, \d+ kept", timeout=20))
        assert time.monotonic() - interrupted_at < slow
        assert set(added) <= set(rows)
        assert "seed accuracy" in run(child, "fit", "seed accuracy")  # the sandbox pool survived the SIGINT
        assert leave(child, "quit") == 0
        assert server.requests[0]["model"] == "test-model"
