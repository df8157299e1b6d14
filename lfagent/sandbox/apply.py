"""Apply LFs to records and build the label matrix L (n x m, -1 = abstain).

Trusted declarative kinds (keywords, embedding, lookup, and regexes that a person or the miner wrote) run here.
Python code, and regexes an LLM wrote (a pattern can backtrack for hours), run only in the sandbox pool.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lfagent.lf import ABSTAIN, LabelingFunction, text_key

TRUSTED_SOURCES = ("mined", "user", "human")


@dataclass
class ApplyOutcome:
    L: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)  # LF name -> why its votes are all abstain


@lru_cache(maxsize=4096)
def keyword_regex(keywords: tuple[str, ...]) -> re.Pattern:
    """Whole-word, case-insensitive match of any keyword or phrase (internal whitespace flexible)."""
    parts = sorted({r"\s+".join(map(re.escape, k.split())) for k in keywords if k.strip()}, key=len,
                   reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def is_trusted(lf: LabelingFunction) -> bool:
    if lf.kind in ("keywords", "embedding", "lookup"):
        return True
    if lf.kind == "regex":
        return lf.provenance.source.split(":")[0] in TRUSTED_SOURCES
    return False


def regex_as_code(lf: LabelingFunction) -> LabelingFunction:
    """An untrusted regex becomes a code LF so that the sandbox's timeout guards it."""
    source = (f"import re\n_P = re.compile({lf.pattern!r}, re.IGNORECASE)\n\n"
              f"def label(record):\n    text = record.get('text') or ''\n"
              f"    return {lf.label!r} if _P.search(text) else None\n")
    return lf.model_copy(update={"kind": "code", "source": source, "pattern": None})


def keyword_needles(keywords: list[str]) -> tuple[str, ...] | None:
    """Lower-case substrings every match must contain, for a cheap test before the regex (None: no test)."""
    needles = tuple(k.split()[0].lower() for k in keywords if k.strip())
    return needles if needles and all(n.isascii() for n in needles) else None


def lookup_column(lf: LabelingFunction, texts: list[str], class_names: list[str]) -> np.ndarray:
    """Votes of a lookup LF: the class it holds for each text's key, abstain on texts it never saw."""
    index = {name: c for c, name in enumerate(class_names)}
    unknown = sorted({name for name in lf.lookup.values() if name not in index})
    if unknown:
        raise ValueError(f"LF {lf.name} votes unknown class(es) {unknown}; classes are {class_names}")
    codes = {key: index[name] for key, name in lf.lookup.items()}
    return np.fromiter((codes.get(text_key(t), ABSTAIN) for t in texts), dtype=np.int16, count=len(texts))


def vote_column(lf: LabelingFunction, texts: list[str], class_index: int,
                embeddings: np.ndarray | None, lowered: list[str] | None = None) -> np.ndarray:
    """Votes of one trusted declarative LF as class indices (-1 abstain).

    `lowered` (the texts in lower case) lets keyword LFs skip the regex on texts that cannot match.
    """
    n = len(texts)
    if lf.kind == "embedding":
        if embeddings is None:
            raise ValueError(f"LF {lf.name} needs embeddings")
        sims = embeddings @ np.asarray(lf.prototypes, dtype=np.float32).T
        hit = sims.max(axis=1) >= lf.threshold
    elif lf.kind == "keywords" and lowered is not None and (needles := keyword_needles(lf.keywords)):
        search = keyword_regex(tuple(lf.keywords)).search
        hit = np.fromiter((any(k in low for k in needles) and search(t) is not None
                           for t, low in zip(texts, lowered)), dtype=bool, count=n)
    else:
        rx = keyword_regex(tuple(lf.keywords)) if lf.kind == "keywords" else _regex(lf.pattern)
        search = rx.search
        hit = np.fromiter((search(t) is not None for t in texts), dtype=bool, count=n)
    return np.where(hit, class_index, ABSTAIN).astype(np.int16)


SANDBOX_SLICE = 5_000  # records per sandbox call: progress moves, and a call's memory stays bounded


def apply_lfs(lfs: list[LabelingFunction], texts: list[str], class_names: list[str], *,
              rows: list[dict] | None = None, embeddings: np.ndarray | None = None,
              pool=None, text_field: str = "text", progress=None) -> ApplyOutcome:
    """Build L for `lfs` over the records. `pool` (a SandboxPool) is needed for code/untrusted LFs;
    `progress` (see lfagent/counting.py) counts the records the sandbox has been through."""
    n, m = len(texts), len(lfs)
    L = np.full((n, m), ABSTAIN, dtype=np.int16)
    errors: dict[str, str] = {}
    sandboxed: list[tuple[int, LabelingFunction]] = []
    lowered = [t.lower() for t in texts] if sum(lf.kind == "keywords" for lf in lfs) > 1 else None
    for j, lf in enumerate(lfs):
        if lf.kind == "lookup":
            L[:, j] = lookup_column(lf, texts, class_names)
        elif is_trusted(lf):
            L[:, j] = vote_column(lf, texts, class_names.index(lf.label), embeddings, lowered)
        else:
            sandboxed.append((j, lf if lf.kind == "code" else regex_as_code(lf)))
    if sandboxed:
        if pool is None:
            raise ValueError("code LFs need a sandbox pool")
        records = rows if rows is not None else [{text_field: t} for t in texts]
        if rows is not None and text_field != "text":
            # LFs read record['text']; give them the task's text field under that name too.
            records = [{**r, "text": t} for r, t in zip(rows, texts)]
        _apply_sandboxed(sandboxed, records, class_names, pool, L, errors, progress)
    return ApplyOutcome(L=L, errors=errors)


def _apply_sandboxed(sandboxed, records, class_names, pool, L, errors, progress) -> None:
    from lfagent.counting import counter

    code_lfs = [lf for _, lf in sandboxed]
    with counter(progress, f"sandbox: {len(code_lfs)} code LF{'s' if len(code_lfs) != 1 else ''}",
                 len(records)) as count:
        for start in range(0, len(records), SANDBOX_SLICE):
            stop = min(start + SANDBOX_SLICE, len(records))
            result = pool.apply(code_lfs, records[start:stop], class_names)
            sub = result.matrix(class_names)
            for column, (j, lf) in enumerate(sandboxed):
                L[start:stop, j] = sub[:, column]
                if lf.name in result.errors:
                    errors.setdefault(lf.name, result.errors[lf.name])
            count.advance(stop - start)
    for j, lf in sandboxed:
        if lf.name in errors:  # failing on any slice fails it everywhere, as one call over all records would
            L[:, j] = ABSTAIN
