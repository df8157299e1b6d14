"""The embedded local model (Qwen2.5-Coder-0.5B through xllamacpp) really writes LFs for youtube-spam."""
import pytest

from conftest import EXAMPLE_TASK
from lfagent.agent import run_agent
from lfagent.store import RunStore

pytestmark = pytest.mark.slow


def test_local_model_writes_lfs_and_at_least_one_is_kept(tmp_path):
    run_dir = tmp_path / "run"
    summary = run_agent(EXAMPLE_TASK, run_dir, llm="local", rounds=2)
    store = RunStore(run_dir)
    llm_lfs = [(lf, status) for lf, status, _, _ in store.lfs() if lf.provenance.source.startswith("llm")]
    assert llm_lfs, f"the local model proposed nothing usable; rejections: {store.rejections()[:5]}"
    kept = [lf.name for lf, status in llm_lfs if status == "kept"]
    assert kept, [(lf.name, status) for lf, status in llm_lfs]
    assert all(lf.provenance.detail.startswith("qwen2.5-coder") for lf, _ in llm_lfs)
    assert summary["llm"]["calls"] > 0 and summary["llm"]["completion_tokens"] > 0
