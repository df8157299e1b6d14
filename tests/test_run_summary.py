"""`lfagent run`'s closing lines: the label model, and how much it weighs against the expert it is joined with."""
from __future__ import annotations

from pathlib import Path

import pytest

from lfagent.agent.run import joined_expert
from lfagent.cli.run_cmd import _summary_text
from lfagent.fit.expert import ExpertState
from lfagent.fit.labeler import Labeler

METRICS = {"n_kept": 12, "n_candidates": 40, "label_model": "dawid_skene", "seed_accuracy": 0.9,
           "seed_accuracy_low": 0.82, "seed_accuracy_high": 0.95, "seed_ece": 0.05, "unlabeled_coverage": 0.76,
           "join_weight": 0.5}


def first_line(expert: str | None, **metrics) -> str:
    summary = {"run_id": "abc", "metrics": {**METRICS, **metrics}, "n_silver": 10, "joined_expert": expert}
    return _summary_text(Path("runs/x"), summary).splitlines()[0]


def test_the_summary_names_the_expert_and_the_label_models_weight():
    assert first_line("fine-tuned").endswith("label model dawid_skene at weight 0.50, joined with the fine-tuned expert")
    assert first_line("frozen", join_weight=1.0).endswith("label model dawid_skene at weight 1.00, joined with the "
                                                          "frozen expert")
    assert first_line(None).endswith("label model dawid_skene")  # no expert: the label model alone


def labeler(**fields) -> Labeler:
    return Labeler(**{"class_names": ["HAM", "SPAM"], "multi_label": False, "lfs": [],
                      "label_model": {"fitted": True}, "prior": [0.5, 0.5], **fields})


@pytest.mark.parametrize("fields, expected", [
    ({"expert": ExpertState(multi_label=False), "expert_embedder": "finetuned-abc"}, "fine-tuned"),
    ({"expert": ExpertState(multi_label=False), "embedder": "minilm"}, "frozen"),
    ({"expert": ExpertState(multi_label=False), "join": "none"}, None),
    ({}, None),  # no embeddings, no expert
    ({"expert": ExpertState(multi_label=False), "label_model": None}, None),  # no LF kept: the expert alone
])
def test_which_expert_the_label_model_is_joined_with(fields, expected):
    assert joined_expert(labeler(**fields)) == expected
