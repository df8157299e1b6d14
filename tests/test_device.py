"""The device encoders and fine-tunes run on (lfagent/data/device.py). No GPU here: torch's answer is faked."""
from __future__ import annotations

import numpy as np
import pytest

from lfagent.data.device import DEVICE_ENV, torch_device
from lfagent.errors import InputError

torch = pytest.importorskip("torch")


def test_auto_takes_the_gpu_only_when_torch_sees_one(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device() == "cuda"
    monkeypatch.setenv(DEVICE_ENV, "CPU")
    assert torch_device() == "cpu"


def test_a_device_that_is_not_there_or_not_known_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(InputError, match=r"LFAGENT_DEVICE=cuda, but torch sees no CUDA GPU"):
        torch_device()
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(InputError, match=r"LFAGENT_DEVICE='tpu': expected one of auto, cpu, cuda, mps"):
        torch_device()


def test_encoders_load_on_the_gpu_when_there_is_one(monkeypatch, tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from lfagent.data.embedders import load_sentence_transformer

    loaded = []
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer",
                        lambda path, device=None: loaded.append(device) or device)
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    load_sentence_transformer(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    load_sentence_transformer(tmp_path)
    assert loaded == ["cuda", "cpu"]


@pytest.mark.slow
def test_a_cpu_choice_keeps_the_fine_tune_off_a_gpu_torch_sees(monkeypatch):
    """Left alone, transformers' trainer moves the encoder to any GPU it finds; here that GPU is a fake one,
    so a fine-tune that went to it would fail."""
    pytest.importorskip("setfit")
    from lfagent.fit.fewshot import fine_tune_encoder

    monkeypatch.setenv(DEVICE_ENV, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)  # sentence-transformers' defaults probe it
    texts = ["the team won", "a late goal", "bake the bread", "salt the soup"]
    body = fine_tune_encoder(texts, np.array([0, 0, 1, 1]), multi_label=False, seed=0, max_steps=2)
    assert str(body.device) == "cpu"


@pytest.mark.parametrize("cuda_started, start", [(False, "fork"), (True, "spawn")])
def test_generate_never_forks_workers_from_a_process_holding_a_cuda_context(monkeypatch, cuda_started, start):
    from lfagent.generate.engines import local

    asked = []

    def get_context(method):
        asked.append(method)
        raise KeyboardInterrupt  # stop before any worker starts

    monkeypatch.setattr(local.multiprocessing, "get_context", get_context)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: cuda_started)
    with pytest.raises(KeyboardInterrupt):
        local._run_pool([], None, None, None, None, "jsonl", workers=2, window=4)
    assert asked == [start]
