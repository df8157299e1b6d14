"""A core install: the CLI starts without heavy imports, and what needs an extra says which pip command
brings it. The fresh-venv test installs the core alone and runs a task end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

HEAVY = ("numpy", "scipy", "torch", "sentence_transformers", "ray", "xllamacpp", "sklearn", "pyarrow", "pandas")


def test_the_cli_starts_without_importing_anything_heavy():
    code = ("import sys, lfagent.cli; lfagent.cli.build_parser(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_missing_extra_is_one_line_naming_the_pip_command(monkeypatch):
    from lfagent.errors import MissingExtra, require

    with pytest.raises(MissingExtra, match=r"pip install 'lfagent\[ray\]'"):
        require("a_module_that_is_not_installed", extra="ray", feature="generate --engine ray")


@pytest.mark.slow
def test_core_install_in_a_fresh_venv_runs_a_task(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], capture_output=True, text=True,
                         timeout=1200)
    assert pip.returncode == 0, pip.stderr[-2000:]
    check = subprocess.run([str(python), "-c", f"import importlib.util as u; print([m for m in {HEAVY[2:6]!r} "
                            "if u.find_spec(m)])"], capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "[]", "the core install pulled an extra: " + check.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["LFAGENT_CACHE"] = str(tmp_path / "cache")
    lfagent = env_dir / "bin" / "lfagent"
    labeled, unlabeled = write_user_files(tmp_path / "mine")
    init = subprocess.run([str(lfagent), "init", "--labeled", str(labeled), "--unlabeled", str(unlabeled),
                           "--text-column", "body", "--label-column", "tag", "--seeds", "100",
                           "--out", str(tmp_path / "task")], capture_output=True, text=True, timeout=120, env=env)
    assert init.returncode == 0, init.stderr[-2000:]
    task = tmp_path / "task" / "task.yaml"
    run = subprocess.run([str(lfagent), "run", str(task), "--out", str(tmp_path / "run"), "--llm", "none"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    said = run.stdout + run.stderr
    assert said.count("running without embeddings") == 1 and "pip install 'lfagent[embed]'" in said
    silver = [json.loads(line) for line in (tmp_path / "run" / "silver.jsonl").read_text().splitlines()]
    assert len(silver) == 300 and {r["label"] for r in silver} <= {"ham", "spam"}
    ray = subprocess.run([str(lfagent), "generate", str(tmp_path / "run"), "--input", str(unlabeled),
                          "--out", str(tmp_path / "gen.jsonl"), "--engine", "ray"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert ray.returncode == 2 and "pip install 'lfagent[ray]'" in ray.stderr and "Traceback" not in ray.stderr


def write_user_files(folder: Path) -> tuple[Path, Path]:
    """A user's own files: 400 labelled and 300 unlabeled SMS texts (train split) as CSVs, columns body/tag."""
    import csv

    with (SHARED_DATA / "sms-spam-collection" / "train.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:700]
    folder.mkdir(parents=True)
    for name, part, columns in (("labeled.csv", rows[:400], ("body", "tag")), ("corpus.csv", rows[400:], ("body",))):
        with (folder / name).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows([r["v2"], r["v1"]][:len(columns)] for r in part)
    return folder / "labeled.csv", folder / "corpus.csv"
