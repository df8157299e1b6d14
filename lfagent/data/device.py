"""Which torch device encoders and fine-tunes run on: the GPU when torch sees one, else the CPU.

$LFAGENT_DEVICE overrides the choice: `auto` (the default), `cpu`, `cuda` or `mps`. Apple's GPU is used only
when asked for: `auto` never picks it (fine-tuning on it is not checked here). A device named but not present
is an error, not a silent fall back to the CPU.
"""
from __future__ import annotations

import os

from lfagent.errors import InputError

DEVICE_ENV = "LFAGENT_DEVICE"
DEVICES = ("auto", "cpu", "cuda", "mps")


def requested_device() -> str:
    """$LFAGENT_DEVICE, checked (blank or unset: auto); no torch import."""
    value = (os.environ.get(DEVICE_ENV) or "").strip().lower() or "auto"
    if value not in DEVICES:
        raise InputError(f"${DEVICE_ENV}={os.environ.get(DEVICE_ENV)!r}: expected one of {', '.join(DEVICES)}")
    return value


def torch_device() -> str:
    """The device to load encoders on and fine-tune on: "cuda", "mps" or "cpu"."""
    import torch

    wanted = requested_device()
    cuda = torch.cuda.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "cpu"
    if wanted == "cuda" and not cuda:
        built = "with" if torch.version.cuda else "without"
        raise InputError(f"${DEVICE_ENV}=cuda, but torch sees no CUDA GPU (torch {torch.__version__}, built {built} "
                         f"CUDA); unset it to run on the CPU")
    if wanted == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"${DEVICE_ENV}=mps, but torch sees no Apple GPU; unset it to run on the CPU")
    return wanted
