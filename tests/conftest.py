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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Embeddings are cached across tests (same texts), but never in the user's home.
    monkeypatch.setenv("LFAGENT_CACHE", str(tmp_path_factory.getbasetemp() / "lfagent-cache"))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def write_task(folder: Path, *, seeds: str, unlabeled: str, extra: str = "", classes=("HAM", "SPAM")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seeds.jsonl").write_text(seeds, encoding="utf-8")
    (folder / "unlabeled.jsonl").write_text(unlabeled, encoding="utf-8")
    class_lines = "\n".join(f"  - {{name: {c}, description: class {c}}}" for c in classes)
    task = folder / "task.yaml"
    task.write_text(f"name: t\ndescription: test task\nclasses:\n{class_lines}\nseeds: seeds.jsonl\n"
                    f"unlabeled: unlabeled.jsonl\n{extra}", encoding="utf-8")
    return task
