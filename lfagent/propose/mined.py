"""Mined LF proposers (no LLM), in the spirit of Snuba and AutoWS-Bench-101.

- n-gram LFs: words and phrases whose smoothed precision for a class on the seeds is high and that
  occur often enough in the unlabeled set to matter.
- shape LFs, scored the same way: tokens with digits by their shape (`87077` and `86688` are both a
  five-digit number, `150p` and `25p` a number then letters), so a cue no two seeds share word for word
  (sms short codes, premium rates, phone numbers) can still gather seed evidence. Each is a regex LF.
- embedding LFs: a class prototype (mean seed embedding) and a nearest-neighbour set (the class's seeds),
  each voting its class above a cosine threshold chosen on the seeds.

Pure functions: arrays and strings in, LabelingFunction lists out.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from lfagent.lf import LabelingFunction, Provenance
from lfagent.scoring.intervals import keyword_bar, smoothed_precision

TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9]")
STOPWORDS = frozenset(
    "a an the and or but of to in on at for with is are was were be been it its this that these those i "
    "you he she we they me my your our their his her him them do does did so as by from not no".split())


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t.strip("'")]


def ngrams(words: list[str], max_n: int) -> set[str]:
    grams = set()
    for n in range(1, max_n + 1):
        for i in range(len(words) - n + 1):
            gram = words[i:i + n]
            if n == 1 and (gram[0] in STOPWORDS or len(gram[0]) < 2 and gram[0].isalnum()):
                continue
            if gram[0] in STOPWORDS and gram[-1] in STOPWORDS:
                continue
            grams.add(" ".join(gram))
    return grams


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:40] or "u" + "_".join(f"{ord(ch):04x}" for ch in text if not ch.isspace())[:20]


def _class_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()[:20] or "c"


def mine_ngram_lfs(seed_texts: list[str], seed_y: np.ndarray, class_names: list[str], *,
                   unlabeled_texts: list[str] | None = None, max_n: int = 3, min_seed_count: int = 2,
                   min_unlabeled_count: int = 3, smoothing: float = 2.0, min_precision: float = 0.6,
                   per_class: int = 25, multi_label: bool = False, shapes: bool = True) -> list[LabelingFunction]:
    """Keyword LFs for n-grams (and, with `shapes`, regex LFs for token shapes) with high smoothed
    precision on the seeds.

    Smoothed precision for class c: (hits_c + s * prior_c) / (hits + s): shrinks rare n-grams to the prior.
    """
    k = len(class_names)
    seed_sets = [features(t, max_n, shapes) for t in seed_texts]
    hits: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(k))
    for grams, label in zip(seed_sets, seed_y):
        label_vec = np.asarray(label, dtype=float) if multi_label else np.eye(k)[int(label)]
        for gram in grams:
            hits[gram] += label_vec
    prior = (np.asarray(seed_y, dtype=float).mean(axis=0) if multi_label
             else np.bincount(np.asarray(seed_y, dtype=int), minlength=k) / len(seed_y))
    doc_count = Counter(g for grams in seed_sets for g in grams)
    unl_count = _unlabeled_counts(unlabeled_texts, hits, max_n, shapes) if unlabeled_texts else None
    bar = keyword_bar(prior, min_precision)
    scored: dict[int, list[tuple[float, str, float]]] = defaultdict(list)
    for gram, vec in hits.items():
        total = doc_count[gram]
        if total < min_seed_count:
            continue
        if unl_count is not None and unl_count[gram] < min_unlabeled_count:
            continue
        precision = smoothed_precision(vec, total, prior, smoothing)
        for c in range(k):
            if precision[c] >= bar[c]:
                support = np.log1p(unl_count[gram] if unl_count is not None else total)
                scored[c].append((precision[c] * support, gram, float(precision[c])))
    return _ngram_lfs(scored, class_names, per_class, max_n)


def _unlabeled_counts(texts: list[str], vocabulary, max_n: int, shapes: bool) -> Counter:
    wanted = set(vocabulary)
    counts: Counter = Counter()
    for text in texts:
        counts.update(features(text, max_n, shapes) & wanted)
    return counts


SHAPE_PREFIX = "shape:"  # shape features never collide with n-grams: tokens are lower case, no "shape:" glued
_RUNS = re.compile(r"\d+|[^\d]+")


def features(text: str, max_n: int, shapes: bool = True) -> set[str]:
    words = tokens(text)
    grams = ngrams(words, max_n)
    if shapes:
        grams |= {SHAPE_PREFIX + s for s in map(token_shape, words) if s}
    return grams


def token_shape(token: str) -> str | None:
    """'87077' -> 'D5', '150p' -> 'D3a', '09058094583' -> 'D7+'; None without a digit.

    Digit runs keep their length up to 6 (short codes, years, prices); longer ones (phone numbers) are one
    shape. Letter runs are 'a' whatever their length.
    """
    if not any(ch.isdigit() for ch in token):
        return None
    return "".join((f"D{len(run)}" if len(run) < 7 else "D7+") if run[0].isdigit() else "a"
                   for run in _RUNS.findall(token))


def _shape_parts(shape: str) -> list[tuple[str, bool]]:
    """'D3a' -> [('3', False), ('a', False)]; 'D7+' -> [('7', True)]: digit counts (at least, when True) or 'a'."""
    return [(count or "a", bool(plus)) for count, plus in re.findall(r"D(\d+)(\+?)|a", shape)]


def shape_pattern(shape: str) -> str:
    """The regex for a token of this shape, bounded like a token (see TOKEN; LF regexes ignore case)."""
    body = "".join(r"[a-z']+" if count == "a" else rf"\d{{{count}{',' if plus else ''}}}"
                   for count, plus in _shape_parts(shape))
    return rf"(?<![a-z0-9']){body}(?![a-z0-9'])"


def describe_shape(shape: str) -> str:
    """'D3a' -> '3 digits then letters', for LF descriptions people read."""
    return " then ".join("letters" if count == "a" else f"{count}{'+' if plus else ''} digits"
                         for count, plus in _shape_parts(shape))


def _ngram_lfs(scored, class_names, per_class, max_n) -> list[LabelingFunction]:
    lfs, seen = [], set()
    for c, items in sorted(scored.items()):
        items.sort(key=lambda item: (-item[0], item[1]))
        for _, gram, precision in items[:per_class]:
            shape = gram.removeprefix(SHAPE_PREFIX) if gram.startswith(SHAPE_PREFIX) else None
            name = (f"shape_{_class_slug(class_names[c])}_{_slug(shape.replace('+', 'plus'))}" if shape
                    else f"kw_{_class_slug(class_names[c])}_{_slug(gram)}")
            if name in seen:
                continue
            seen.add(name)
            detail = f"smoothed seed precision {precision:.2f}"
            if shape:
                lfs.append(LabelingFunction(
                    name=name, kind="regex", label=class_names[c], pattern=shape_pattern(shape),
                    description=f"a token of {describe_shape(shape)}",
                    provenance=Provenance(source="mined:shape", detail=detail)))
                continue
            lfs.append(LabelingFunction(
                name=name, kind="keywords", label=class_names[c], keywords=[gram],
                provenance=Provenance(source="mined:ngram", detail=f"{detail}, n<={max_n}")))
    return lfs


def choose_threshold(sims: np.ndarray, is_class: np.ndarray, *, target_precision: float,
                     min_hits: int = 3) -> float | None:
    """Lowest cosine threshold whose seed precision stays >= target (most coverage at that precision)."""
    order = np.argsort(-sims)
    sorted_sims, sorted_hit = sims[order], is_class[order].astype(float)
    precision = np.cumsum(sorted_hit) / np.arange(1, len(sims) + 1)
    ok = np.nonzero((precision >= target_precision) & (np.arange(1, len(sims) + 1) >= min_hits))[0]
    if len(ok) == 0:
        return None
    return float(sorted_sims[ok[-1]])


def mine_embedding_lfs(seed_emb: np.ndarray, seed_y: np.ndarray, class_names: list[str], *,
                       multi_label: bool = False, targets: tuple[float, ...] = (0.9,),
                       ) -> list[LabelingFunction]:
    """Prototype and nearest-neighbour LFs per class, thresholds chosen on the seeds.

    Nearest-neighbour similarities are leave-one-out (a seed is not its own neighbour), so the chosen
    threshold is not flattered by self-matches.

    One threshold per kind by default: nested thresholds (0.9 inside 0.75) cast the same evidence twice,
    and the label model, which takes LFs as independent, grows sure of it; the embedding classifier
    already joins as one more expert on top.
    """
    k = len(class_names)
    member = (np.asarray(seed_y, dtype=bool) if multi_label
              else np.eye(k, dtype=bool)[np.asarray(seed_y, dtype=int)])
    prior = member.mean(axis=0)
    lfs: list[LabelingFunction] = []
    for c, class_name in enumerate(class_names):
        rows = np.nonzero(member[:, c])[0]
        if len(rows) < 2:
            continue
        proto = seed_emb[rows].mean(axis=0)
        proto /= np.linalg.norm(proto) + 1e-12
        proto_sims = seed_emb @ proto
        knn_sims = _leave_one_out_max(seed_emb, rows)
        for kind, sims, prototypes in (("proto", proto_sims, proto[None, :]), ("knn", knn_sims, seed_emb[rows])):
            for target in targets:
                goal = max(target, prior[c] + (1 - prior[c]) / 2)
                threshold = choose_threshold(sims, member[:, c], target_precision=goal)
                if threshold is None:
                    continue
                lfs.append(LabelingFunction(
                    name=f"emb_{kind}_{_class_slug(class_name)}_p{int(round(goal * 100))}", kind="embedding",
                    label=class_name, prototypes=np.round(prototypes, 6).tolist(), threshold=threshold,
                    provenance=Provenance(source=f"mined:{kind}",
                                          detail=f"seed precision >= {goal:.2f} at cosine {threshold:.3f}")))
    return _dedupe_names(lfs)


def _leave_one_out_max(seed_emb: np.ndarray, rows: np.ndarray) -> np.ndarray:
    sims = seed_emb @ seed_emb[rows].T  # n_seed x |rows|
    for column, row in enumerate(rows):
        sims[row, column] = -1.0
    return sims.max(axis=1)


def _dedupe_names(lfs: list[LabelingFunction]) -> list[LabelingFunction]:
    seen, out = set(), []
    for lf in lfs:
        if lf.name not in seen and lf.fingerprint not in seen:
            seen.update((lf.name, lf.fingerprint))
            out.append(lf)
    return out
