"""Labeling functions as data. An LF votes a class name or abstains; the label matrix L carries the votes.

Kinds:
- keywords:  votes `label` when any keyword/phrase occurs as whole words (case-insensitive).
- regex:     votes `label` when `pattern` matches (case-insensitive).
- embedding: votes `label` when the record's max cosine similarity to `prototypes` reaches `threshold`.
- code:      Python `def label(record) -> str | None`, run only inside the sandbox; may vote any class.
- lookup:    votes `lookup[text_key(text)]` (a class name) for the texts it holds and abstains on every other
             text; may vote any class. The LLM's labels of records enter the label model this way
             (agent/annotate.py): as one more source weighed by its measured accuracy, never as gold.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ABSTAIN = -1
ANNOTATION_SOURCE = "llm:annotate"  # provenance of the LLM's record labels (agent/annotate.py)
LFKind = Literal["keywords", "regex", "embedding", "code", "lookup"]
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,79}$"


class Provenance(BaseModel):
    """Who made an LF and from what."""

    model_config = ConfigDict(extra="forbid")
    source: str  # e.g. "mined:ngram", "mined:prototype", "llm:code", "llm:keywords", "llm:concepts", "user"
    detail: str = ""  # model name, mined statistic, prompt id, ...
    round: int | None = None
    parent: str | None = None  # the LF this one refines
    # text_key of each seed its prompt showed: it is scored without them (it saw their labels).
    shown: list[str] = Field(default_factory=list)


def text_key(text: str) -> str:
    """A short stable key of a text (whitespace-insensitive)."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()[:12]


class LabelingFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    kind: LFKind
    label: str | None = None  # the class it votes; None only for code LFs that may vote several
    keywords: list[str] = Field(default_factory=list)
    pattern: str | None = None
    prototypes: list[list[float]] = Field(default_factory=list)
    threshold: float | None = None
    source: str | None = None
    lookup: dict[str, str] = Field(default_factory=dict)  # text_key(text) -> class name (kind "lookup")
    provenance: Provenance = Field(default_factory=lambda: Provenance(source="user"))
    description: str = ""

    @model_validator(mode="after")
    def _fields_match_kind(self):
        need = {"keywords": self.keywords, "regex": self.pattern, "code": self.source,
                "embedding": self.prototypes and self.threshold is not None, "lookup": self.lookup}
        if not need[self.kind]:
            fields = {"keywords": "keywords", "regex": "pattern", "code": "source",
                      "embedding": "prototypes and threshold", "lookup": "lookup (text key -> class name)"}
            raise ValueError(f"a {self.kind} LF needs its {fields[self.kind]}")
        if self.kind not in ("code", "lookup") and self.label is None:
            raise ValueError(f"a {self.kind} LF needs the class it votes (`label`)")
        if self.kind == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {self.pattern!r}: {exc}") from None
        return self

    @property
    def fingerprint(self) -> str:
        """Hash of what the LF does (not its name): equal fingerprints vote identically."""
        body = self.model_dump(include={"kind", "label", "keywords", "pattern", "threshold"})
        body["source"] = normalised_code(self.source) if self.source else None
        if self.prototypes:
            body["prototypes"] = [[round(v, 5) for v in p] for p in self.prototypes]
        if self.lookup:  # only when set: the fingerprints of the other kinds stay as they were
            body["lookup"] = sorted(self.lookup.items())
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def summary(self) -> str:
        """One readable line describing what it matches."""
        if self.kind == "keywords":
            shown = ", ".join(repr(k) for k in self.keywords[:6]) + (" ..." if len(self.keywords) > 6 else "")
            return f"any of {shown} -> {self.label}"
        if self.kind == "regex":
            return f"/{self.pattern}/i -> {self.label}"
        if self.kind == "embedding":
            return f"cosine >= {self.threshold:.3f} to {len(self.prototypes)} prototype(s) -> {self.label}"
        if self.kind == "lookup":
            return f"{self.description or 'labels looked up by text'} ({len(self.lookup)} texts) -> any class"
        first = (self.description or "python label(record)").splitlines()[0]
        return f"{first} -> {self.label or 'any class'}"


def normalised_code(source: str) -> str:
    """Same code up to comments and formatting gives the same text, so duplicates are caught."""
    try:
        return ast.dump(ast.parse(source))
    except SyntaxError:
        return source


def lf_set_hash(lfs: list[LabelingFunction]) -> str:
    """Order-independent hash of a set of LFs, for provenance of generated labels."""
    joined = ",".join(sorted(f"{lf.name}:{lf.fingerprint}" for lf in lfs))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
