"""Which embedding expert a new run gets: the fine-tuned one unless the user (or $LFAGENT_EXPERT) says frozen."""
from __future__ import annotations

import pytest

from lfagent.errors import InputError
from lfagent.fit.fold_fit import PipelineConfig


def test_a_new_run_fine_tunes_by_default(monkeypatch):
    monkeypatch.delenv("LFAGENT_EXPERT", raising=False)
    assert PipelineConfig().expert == "finetuned"
    monkeypatch.setenv("LFAGENT_EXPERT", "frozen")
    assert PipelineConfig().expert == "frozen"
    assert PipelineConfig(expert="finetuned").expert == "finetuned"  # an explicit choice wins


def test_a_misspelt_expert_variable_names_itself(monkeypatch):
    monkeypatch.setenv("LFAGENT_EXPERT", "fine-tuned")
    with pytest.raises(InputError, match=r"\$LFAGENT_EXPERT is 'fine-tuned'"):
        PipelineConfig()


def test_the_run_command_keeps_the_default_step_cap(monkeypatch, tmp_path):
    from lfagent.agent import run as run_module

    seen = {}

    class Stop(Exception):
        pass

    def capture(*args, config, **kwargs):
        seen["config"] = config
        raise Stop

    monkeypatch.setattr(run_module, "Session", capture, raising=False)
    monkeypatch.delenv("LFAGENT_EXPERT", raising=False)
    with pytest.raises(Stop):
        run_module.run_agent(tmp_path / "task.yaml", tmp_path / "run", llm="none")
    assert seen["config"].fewshot_max_steps == PipelineConfig().fewshot_max_steps
    assert seen["config"].expert == "finetuned"
