"""Prompt templates (files in lfagent/prompts/) and the context the loop fills them with."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from string import Template

import numpy as np

from lfagent.task import TaskSpec

MAX_EXAMPLE_CHARS = 220


@lru_cache(maxsize=None)
def template(name: str) -> Template:
    return Template(resources.files("lfagent").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8"))


def system_prompt() -> str:
    return template("system").template.strip()


@dataclass
class PromptContext:
    task: TaskSpec
    examples: dict[str, list[str]]  # class name -> example texts the loop chose
    guideline: str = ""
    current_lfs: list[str] = field(default_factory=list)  # one line per kept LF, with its seed accuracy
    round: int = 0
    # Randomly drawn seeds per class: cue words are copied from typical texts, not from the hard cases.
    typical: dict[str, list[str]] = field(default_factory=dict)
    # Class name -> cues its kept LFs already match (keywords, patterns): a recall request asks for others.
    covered: dict[str, list[str]] = field(default_factory=dict)

    def fields(self, target: str | None = None) -> dict[str, str]:
        classes = "\n".join(f"- {c.name}: {c.description}" for c in self.task.classes)
        return {
            "task_description": self.task.description or self.task.name,
            "classes": classes,
            "class_list": ", ".join(self.task.class_names),
            "guideline": f"Guideline:\n{self.guideline.strip()}\n" if self.guideline.strip() else "",
            "examples": self.render_examples(),
            "current_lfs": ("Labeling functions already kept (do not repeat them):\n"
                            + "\n".join(f"- {line}" for line in self.current_lfs[:12]) + "\n") if self.current_lfs else "",
            "target": target or "",
        }

    def render_examples(self, only: str | None = None) -> str:
        lines = []
        for name, texts in self.examples.items():
            if only and name != only:
                continue
            for text in texts:
                lines.append(f"[{name}] {clip(text)}" if not only else f"- {clip(text)}")
        return "\n".join(lines)


def clip(text: str, limit: int = MAX_EXAMPLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(name: str, context: PromptContext, target: str | None = None, **extra: str) -> str:
    return template(name).safe_substitute({**context.fields(target), **extra})


def typical_examples(texts: list[str], y: np.ndarray, class_names: list[str], *, per_class: int, seed: int,
                     multi_label: bool = False) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    members = np.asarray(y, bool) if multi_label else np.eye(len(class_names), dtype=bool)[np.asarray(y, int)]
    return {name: [texts[i] for i in rng.permutation(np.nonzero(members[:, c])[0])[:per_class]]
            for c, name in enumerate(class_names)}


def choose_examples(texts: list[str], y: np.ndarray, class_names: list[str], *, heldout: np.ndarray | None,
                    covered: np.ndarray | None, per_class: int, seed: int, multi_label: bool = False,
                    ) -> dict[str, list[str]]:
    """Seeds to show the LLM, per class: wrong first, then uncovered, then uncertain, then random.

    `heldout` are the cross-fitted probabilities (n x k) of the current model, None before the first fit.
    """
    rng = np.random.default_rng(seed)
    n = len(texts)
    members = np.asarray(y, bool) if multi_label else np.eye(len(class_names), dtype=bool)[np.asarray(y, int)]
    priority = rng.random(n)  # random tie-breaks, in [0, 1)
    if heldout is not None:
        pred_wrong = (heldout >= 0.5) != members if multi_label else (heldout.argmax(1) != np.asarray(y))[:, None]
        sorted_probs = np.sort(heldout, axis=1)
        margin = sorted_probs[:, -1] - sorted_probs[:, -2] if heldout.shape[1] > 1 else sorted_probs[:, -1]
        priority = priority + 1.0 * (1 - margin)
        priority = priority + 3.0 * np.asarray(pred_wrong).any(axis=1)
    if covered is not None:
        priority = priority + 2.0 * ~np.asarray(covered, bool)
    chosen: dict[str, list[str]] = {}
    for c, name in enumerate(class_names):
        rows = np.nonzero(members[:, c])[0]
        rows = rows[np.argsort(-priority[rows])][:per_class]
        chosen[name] = [texts[i] for i in rows]
    return chosen
