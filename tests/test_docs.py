"""docs/cli.md and docs/task.md are generated from the code; they must match what the code generates now.

After changing a command, a flag or a task field: `python -m lfagent.cli.docs cli > docs/cli.md` and
`python -m lfagent.cli.docs task > docs/task.md`.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

REGENERATE = "python -m lfagent.cli.docs {page} > docs/{page}.md"


@pytest.mark.parametrize("page", ["cli", "task"])
def test_generated_page_matches_the_code(page):
    from lfagent.cli.docs import PAGES

    committed = (REPO / "docs" / f"{page}.md").read_text(encoding="utf-8")
    assert committed == PAGES[page](), f"docs/{page}.md is stale: run `{REGENERATE.format(page=page)}`"


def test_the_generator_runs_as_documented():
    done = subprocess.run([sys.executable, "-m", "lfagent.cli.docs", "cli"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / "docs" / "cli.md").read_text(encoding="utf-8")


def test_cli_page_lists_every_command_and_flag():
    from lfagent.cli import build_parser

    page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert f"## `lfagent {name}`" in page
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in page, f"lfagent {name} {flag} is missing from docs/cli.md"


def test_every_task_field_is_described():
    from lfagent.task import ClassSpec, TaskSpec

    for model in (TaskSpec, ClassSpec):
        for name, field in model.model_fields.items():
            if name != "base_dir":  # set by load_task, not a field of the file
                assert field.description, f"{model.__name__}.{name} has no description for docs/task.md"
    page = (REPO / "docs" / "task.md").read_text(encoding="utf-8")
    assert all(f"| `{name}` |" in page for name in TaskSpec.model_fields if name != "base_dir")
