"""The embedded local model (Qwen2.5-Coder-0.5B through xllamacpp) really writes LFs for youtube-spam."""
import pytest

from conftest import example_subset
from lfagent.agent.run import run_agent
from lfagent.rundir.store import RunStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("local")
    run_dir = base / "run"
    summary = run_agent(example_subset(base / "task", n_unlabeled=500), run_dir, llm="local", rounds=1,
                        max_llm_calls=7)  # the code, keyword and recall prompts; about 45 s
    store = RunStore(run_dir)
    llm_lfs = [(lf, status) for lf, status, _, _ in store.lfs() if lf.provenance.source.startswith("llm")]
    return summary, store, llm_lfs


def test_local_model_writes_lfs_that_reach_scoring(local_run):
    summary, store, llm_lfs = local_run
    assert llm_lfs, f"the local model proposed nothing usable; rejections: {store.rejections()[:5]}"
    assert all(lf.provenance.detail.startswith("qwen2.5-coder") for lf, _ in llm_lfs)
    assert summary["llm"]["calls"] > 0 and summary["llm"]["completion_tokens"] > 0


def test_every_local_lf_is_kept_or_dropped_with_its_reason(local_run):
    """Whether the small model's LFs survive depends on its sampled replies; that each one is judged and
    a dropped one carries the reason does not."""
    _, store, llm_lfs = local_run
    judged = {lf.name: (status, reason) for lf, status, _, reason in store.lfs()}
    for lf, _ in llm_lfs:
        status, reason = judged[lf.name]
        assert status in ("kept", "dropped"), (lf.name, status)
        assert status == "kept" or reason, lf.name
