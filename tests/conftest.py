import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EXAMPLE_TASK = REPO / "examples" / "youtube-spam" / "task.yaml"

# Keep small dense algebra single-threaded (2-thread BLAS is far slower here) and stay offline.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Fine-tuning the expert costs minutes per run: tests use the frozen encoder unless they test the fine-tuned
# one with a few optimiser steps (test_fewshot_expert.py, test_labeler_parity.py). Set at import, so
# module-scoped fixtures and subprocesses see it too.
os.environ["LFAGENT_EXPERT"] = "frozen"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Embeddings are cached across tests (same texts), but never in the user's home.
    monkeypatch.setenv("LFAGENT_CACHE", str(tmp_path_factory.getbasetemp() / "lfagent-cache"))

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(monkeypatch):
    """The scripted OpenAI-compatible server the agent tests talk to (tests/agent_script.py answers),
    with the environment pointing the client at it. test_llm.py has a plain one of its own."""
    from agent_script import respond
    from llm_server import ScriptedLLMServer

    with ScriptedLLMServer(responder=respond) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield srv


def write_task(folder: Path, *, seeds: str, unlabeled: str, extra: str = "", classes=("HAM", "SPAM")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seeds.jsonl").write_text(seeds, encoding="utf-8")
    (folder / "unlabeled.jsonl").write_text(unlabeled, encoding="utf-8")
    class_lines = "\n".join(f"  - {{name: {c}, description: class {c}}}" for c in classes)
    task = folder / "task.yaml"
    task.write_text(f"name: t\ndescription: test task\nclasses:\n{class_lines}\nseeds: seeds.jsonl\n"
                    f"unlabeled: unlabeled.jsonl\n{extra}", encoding="utf-8")
    return task


def example_subset(folder: Path, *, n_seeds: int = 100, n_unlabeled: int = 300, n_test: int = 0) -> Path:
    """The bundled example with its first seeds, unlabeled and test rows (n_test=0: no test split): the same
    task at a fraction of the embedding cost."""
    src = EXAMPLE_TASK.parent
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("seeds", n_seeds), ("unlabeled", n_unlabeled), ("test", n_test)):
        if n:
            lines = (src / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
            (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = (src / "task.yaml").read_text(encoding="utf-8")
    assert "test: test.jsonl" in task
    (folder / "task.yaml").write_text(task if n_test else task.replace("test: test.jsonl", ""), encoding="utf-8")
    return folder / "task.yaml"


GOEMOTIONS_CLASSES = ["admiration", "gratitude", "love", "anger"]


def goemotions_rows() -> list[dict]:
    """GoEmotions train rows carrying one of GOEMOTIONS_CLASSES, in file order: {"text", "label": [names]}."""
    names = (SHARED_DATA / "goemotions" / "labels.txt").read_text().split()
    rows = []
    for line in (SHARED_DATA / "goemotions" / "train.tsv").read_text().splitlines()[1:4000]:
        text, ids, _ = line.split("\t")
        labels = [names[int(i)] for i in ids.split(",") if names[int(i)] in GOEMOTIONS_CLASSES]
        if labels:
            rows.append({"text": text, "label": labels})
    return rows


def goemotions_task(folder: Path, *, n_seeds: int, n_unlabeled: int) -> Path:
    """A multi-label task of four GoEmotions classes: seeds, then unlabeled rows (with ids), from train."""
    import json

    rows = goemotions_rows()
    folder.mkdir(parents=True)
    (folder / "seeds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_seeds]))
    unlabeled = rows[n_seeds:n_seeds + n_unlabeled]
    (folder / "unlabeled.jsonl").write_text("".join(json.dumps({"id": f"u{i}", "text": r["text"]}) + "\n"
                                                    for i, r in enumerate(unlabeled)))
    (folder / "task.yaml").write_text("name: ge\nclasses: [" + ", ".join(GOEMOTIONS_CLASSES) + "]\n"
                                      "multi_label: true\nseeds: seeds.jsonl\nunlabeled: unlabeled.jsonl\n")
    return folder / "task.yaml"
