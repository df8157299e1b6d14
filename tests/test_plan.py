"""`lfagent run --dry-run`: the plan counts the calls a scripted run really makes, and sends nothing."""
import json
import math
import subprocess
import sys

import pytest

from agent_script import last_user
from conftest import EXAMPLE_TASK, REPO
from test_agent import small_task
from lfagent.agent.run import run_agent
from lfagent.data.dataset import load_seeds
from lfagent.errors import InputError
from lfagent.llm.plan import plan_run
from lfagent.task import load_task

KIND_MARKERS = {"guideline": "labeling guideline", "code LF": "Write a Python function",
                "recall": "other words, short phrases or patterns",
                "keywords": "Which words or short phrases", "concepts": "Extract the concepts",
                "refine": "Rewrite `label(record)`", "labels": "Label each record above"}


def kind_of(body: dict) -> str:
    prompt = last_user(body)
    return next(kind for kind, marker in KIND_MARKERS.items() if marker in prompt)


def chars_over_4(body: dict) -> int:
    tokens = sum(math.ceil(len(m["content"]) / 4) + 4 for m in body["messages"])
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    return tokens + (math.ceil(len(json.dumps(schema)) / 4) if schema else 0)


@pytest.mark.slow
@pytest.mark.parametrize("max_llm_calls", [None, 7])
def test_plan_counts_the_calls_a_scripted_run_makes(tmp_path, server, max_llm_calls):
    task_path = small_task(tmp_path, 200, test=False)
    task = load_task(task_path)
    plan = plan_run(task, load_seeds(task), rounds=2, max_llm_calls=max_llm_calls, embed=False, annotate=30)
    run_agent(task_path, tmp_path / "run", llm="openai:test-model", rounds=2, max_llm_calls=max_llm_calls,
              embed=False, annotate=30)
    sent = {kind: [b for b in server.requests if kind_of(b) == kind] for kind in KIND_MARKERS}
    assert {row.kind: row.calls for row in plan.kinds} == {kind: len(bodies) for kind, bodies in sent.items()}
    assert plan.calls == server.chat_count
    assert plan.limited_by == ("calls" if max_llm_calls else None)
    # An upper bound: no kind's real prompts are longer than planned, nor its replies allowed longer.
    for row in plan.kinds:
        assert row.prompt_tokens >= sum(chars_over_4(b) for b in sent[row.kind])
        assert row.completion_tokens == sum(b["max_tokens"] for b in sent[row.kind])


def test_plan_schedule_follows_the_loop():
    task = load_task(EXAMPLE_TASK)
    seeds = load_seeds(task)
    plan = {row.kind: row.calls for row in plan_run(task, seeds, rounds=3, embed=True).kinds}
    # 2 classes: one guideline; per round 2 code LFs, a recall request per class, 3 typical seeds per class
    # for keywords and one refinement; concepts once (round 1), only with embeddings.
    assert plan == {"guideline": 1, "code LF": 6, "recall": 6, "keywords": 18, "concepts": 2, "refine": 3,
                    "labels": 0}
    # --annotate 45: the 94 distinct seed texts and 45 records, ten to a request, after round 1.
    labels = plan_run(task, seeds, rounds=3, annotate=45).kinds[-1]
    assert labels.kind == "labels" and labels.calls == 14
    packed = plan_run(task, seeds, rounds=3, annotate=45, annotate_batch=25).kinds[-1]
    assert packed.calls == 6 and packed.completion_tokens < labels.completion_tokens
    with pytest.raises(InputError, match="records per request must be 1 to 50, got 0"):
        plan_run(task, seeds, rounds=3, annotate=45, annotate_batch=0)
    with pytest.raises(InputError, match="got 51"):
        run_agent(EXAMPLE_TASK, EXAMPLE_TASK.parent / "never-made", llm="none", annotate_batch=51)
    assert [row.calls for row in plan_run(task, seeds, rounds=3, embed=False).kinds if row.kind == "concepts"] == [0]
    capped = plan_run(task, seeds, rounds=3, max_tokens=3000, prices=(1.0, 2.0))
    assert capped.limited_by == "tokens" and capped.calls < 30
    uncapped = plan_run(task, seeds, rounds=3, prices=(1.0, 2.0))
    assert uncapped.cost == pytest.approx((uncapped.prompt_tokens + 2 * uncapped.completion_tokens) / 1e6)


def test_dry_run_sends_nothing_and_builds_no_client(tmp_path, server):
    code = (f"import sys; sys.argv = ['lfagent', 'run', {str(EXAMPLE_TASK)!r}, '--llm', 'openai:test-model', "
            "'--price-prompt', '0.15', '--price-completion', '0.6', '--dry-run', '--rounds', '2']\n"
            "from lfagent.cli import main\ncode = main()\n"
            "print('CLIENT' if 'openai' in sys.modules or 'lfagent.llm.openai_compat' in sys.modules else 'NONE')\n"
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert server.paths == []  # no request of any kind reached the server
    assert done.stdout.strip().endswith("NONE")
    # 2 classes, 2 rounds: 1 guideline + 2x2 code + 2x2 recall + 2x6 keywords + 2 concepts + 2 refinements, and
    # with an openai model the default --annotate 300: (94 distinct seeds + 300 records) / 10 = 40 label requests
    assert "at most 65 calls" in done.stdout and "Nothing was sent." in done.stdout
    assert not (tmp_path / "run").exists()


def test_dry_run_counts_the_expert_fine_tunes_it_would_run(monkeypatch, capsys):
    from lfagent.cli import main as cli_main
    from lfagent.fit.fold_fit import fold_indices

    monkeypatch.delenv("LFAGENT_EXPERT", raising=False)  # the default: fine-tuned
    seeds = load_seeds(load_task(EXAMPLE_TASK))
    folds = fold_indices(seeds.y, 5, 0, False)
    group = [sum(len(folds[f]) for f in range(g, 5, 2)) for g in (0, 1)]
    # SetFit's pairs: 2 x iterations x seeds, 16 a step; the final encoder 20 iterations, the groups 10.
    expected = math.ceil(2 * 20 * len(seeds.y) / 16) + sum(math.ceil(2 * 10 * n / 16) for n in group)
    assert cli_main(["run", str(EXAMPLE_TASK), "--out", "unused", "--llm", "none", "--dry-run"]) == 0
    assert f"3 fine-tunes of MiniLM on {len(seeds.y)} seeds, {expected:,} optimiser steps" in capsys.readouterr().out
    assert cli_main(["run", str(EXAMPLE_TASK), "--out", "unused", "--llm", "none", "--dry-run",
                     "--expert-steps", "50"]) == 0
    assert "150 optimiser steps" in capsys.readouterr().out  # each of the three capped at 50
    assert cli_main(["run", str(EXAMPLE_TASK), "--out", "unused", "--llm", "none", "--dry-run",
                     "--expert", "frozen"]) == 0
    assert "fine-tune" not in capsys.readouterr().out
