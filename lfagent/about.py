"""The installed lfagent's version, for --version, run cards and reports."""
from __future__ import annotations


def lfagent_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lfagent")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
