"""What a simulated LLM "knows" about a task: per-class telling words and phrases, and record labels.

Two sources, kept apart on purpose:
- cue rows: labelled rows a run never sees (not its seeds, not its unlabeled pool, not test; for WRENCH the
  `valid` split plus the train rows the draw leaves out). The telling words come only from these, so the
  knowledge is knowledge beyond the seeds, not a copy of what lfagent already has.
- record rows: every labelled row of the dataset (train, valid and test), looked up by text. A strong LLM
  labels a record it reads with some accuracy; here that accuracy is simulated as the gold label, flipped at
  the persona's rate (see persona.py). Records not found fall back to the telling words.

Everything is pure and deterministic: the same rows give the same knowledge.
"""
from __future__ import annotations

import bisect
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"[£$]?[a-z0-9]+(?:['.][a-z0-9]+)*")
MAX_N = 2            # telling phrases are unigrams and bigrams
MIN_SUPPORT = 3      # rows of the class a cue must occur in
SMOOTHING = 2.0      # pseudo-rows at the class prior added to each cue's counts
MIN_LIFT = 0.5       # a cue's precision must close this share of the gap from the prior to 1
CUES_PER_CLASS = 60
# Words a capable model would not offer as a keyword on their own (lfagent's keyword parser rejects them too).
COMMON_WORDS = frozenset(
    "a an the and or but of to in on at for with is are was were be been it its this that these those i "
    "you he she we they me my your our their his her him them do does did so as by from not no".split())


def normalise(text: str) -> str:
    """The lookup key of a record text: lower case, whitespace collapsed."""
    return " ".join(str(text).lower().split())


def words(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def ngrams(text: str, max_n: int = MAX_N) -> set[str]:
    found = words(text)
    return {" ".join(found[i:i + n]) for n in range(1, max_n + 1) for i in range(len(found) - n + 1)}


def is_common(phrase: str) -> bool:
    return all(w in COMMON_WORDS for w in phrase.split())


@dataclass(frozen=True)
class Cue:
    phrase: str
    klass: int
    precision: float   # smoothed share of the rows holding the phrase that are of the class
    support: int       # rows of the class holding it


@dataclass
class Knowledge:
    class_names: list[str]
    multi_label: bool
    prior: np.ndarray                                   # (k,) share of cue rows per class
    counts: dict[str, np.ndarray]                       # phrase -> rows of each class holding it (cue rows)
    totals: dict[str, int]                              # phrase -> rows holding it
    cues: list[list[Cue]]                               # per class, best first
    examples: list[list[str]]                           # per class, cue-row texts richest in its cues first
    records: dict[str, frozenset[int]] = field(default_factory=dict)   # normalised text -> gold classes
    _sorted_keys: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.class_names)

    def precision(self, phrase: str) -> np.ndarray:
        """(k,) smoothed P(class | phrase) over the cue rows; the prior for an unseen phrase."""
        counts = self.counts.get(phrase)
        if counts is None:
            return self.prior.copy()
        return (counts + SMOOTHING * self.prior) / (self.totals[phrase] + SMOOTHING)

    def lift(self, phrase: str) -> np.ndarray:
        """(k,) how far the phrase moves each class from its prior towards certainty, in [-1, 1]."""
        p = self.precision(phrase)
        return np.where(p >= self.prior, (p - self.prior) / np.maximum(1 - self.prior, 1e-9),
                        (p - self.prior) / np.maximum(self.prior, 1e-9))

    def gold(self, text: str) -> frozenset[int] | None:
        """The gold classes of a known record text (also when the prompt clipped it with '...')."""
        key = normalise(text)
        if key in self.records:
            return self.records[key]
        # A prompt may clip a long text (with or without a trailing "..."): the one record it starts.
        prefix = key.removesuffix("...").removesuffix("…").rstrip()
        if len(prefix) >= 40:
            i = bisect.bisect_left(self._sorted_keys, prefix)
            if i < len(self._sorted_keys) and self._sorted_keys[i].startswith(prefix):
                return self.records[self._sorted_keys[i]]
        return None

    def guess(self, text: str) -> frozenset[int]:
        """Classes from the telling words alone (what the model would say of a text it cannot place)."""
        score = np.zeros(self.k)
        for phrase in ngrams(text):
            if phrase in self.counts:
                score += np.log(self.precision(phrase) / self.prior)
        if self.multi_label:
            chosen = frozenset(int(c) for c in np.flatnonzero(score > 1.0))
            return chosen or frozenset({int(np.argmax(score + np.log(self.prior)))})
        return frozenset({int(np.argmax(score + np.log(self.prior)))})


def build_knowledge(class_names: list[str], cue_texts: list[str], cue_members: np.ndarray, *,
                    record_texts: list[str] = (), record_members: np.ndarray | None = None,
                    multi_label: bool = False) -> Knowledge:
    """Knowledge from cue rows (texts, n x k 0/1 membership) and record rows to look labels up in."""
    members = np.asarray(cue_members, bool)
    if members.ndim != 2 or members.shape != (len(cue_texts), len(class_names)):
        raise ValueError(f"cue_members must be {len(cue_texts)} x {len(class_names)}, got {members.shape}")
    prior = np.clip(members.mean(axis=0), 1e-3, 1 - 1e-3) if len(cue_texts) else np.full(len(class_names), 0.5)
    counts: dict[str, np.ndarray] = {}
    totals: dict[str, int] = {}
    for text, row in zip(cue_texts, members):
        for phrase in ngrams(text):
            counts.setdefault(phrase, np.zeros(len(class_names)))
            counts[phrase] += row
            totals[phrase] = totals.get(phrase, 0) + 1
    knowledge = Knowledge(class_names=list(class_names), multi_label=multi_label, prior=prior, counts=counts,
                          totals=totals, cues=[], examples=[])
    knowledge.cues = [_class_cues(knowledge, c) for c in range(len(class_names))]
    knowledge.examples = [_typical_texts(knowledge, c, cue_texts, members[:, c]) for c in range(len(class_names))]
    if record_members is not None:
        votes: dict[str, list[frozenset[int]]] = {}
        for text, row in zip(record_texts, np.asarray(record_members, bool)):
            votes.setdefault(normalise(text), []).append(frozenset(int(c) for c in np.flatnonzero(row)))
        # A text labelled differently in two rows gets its most frequent label set.
        knowledge.records = {key: max(sets, key=sets.count) for key, sets in votes.items()}
        knowledge._sorted_keys = sorted(knowledge.records)
    return knowledge


def _class_cues(knowledge: Knowledge, c: int) -> list[Cue]:
    found = []
    for phrase, counts in knowledge.counts.items():
        support = int(counts[c])
        if support < MIN_SUPPORT or is_common(phrase) or len(phrase) < 2:  # no model offers "a" or "the" as a cue
            continue
        lift = float(knowledge.lift(phrase)[c])
        if lift < MIN_LIFT:
            continue
        found.append((lift * lift * math.log1p(support), Cue(phrase, c, float(knowledge.precision(phrase)[c]),
                                                            support)))
    found.sort(key=lambda item: (-item[0], item[1].phrase))
    chosen: list[Cue] = []
    for _, cue in found:
        # A bigram adds nothing over a word of it that is already as telling.
        parts = cue.phrase.split()
        if len(parts) > 1 and any(other.phrase in parts and other.precision >= cue.precision - 0.02 for other in chosen):
            continue
        chosen.append(cue)
        if len(chosen) >= CUES_PER_CLASS:
            break
    return chosen


def _typical_texts(knowledge: Knowledge, c: int, texts: list[str], member: np.ndarray, limit: int = 20) -> list[str]:
    cue_set = {cue.phrase for cue in knowledge.cues[c]}
    scored = [(-len(ngrams(text) & cue_set), i) for i in np.flatnonzero(member) for text in [texts[i]]]
    scored.sort()
    return [texts[i] for score, i in scored[:limit] if score < 0]


# ---- from an evals draw ------------------------------------------------------------------------------

def members_of(y: np.ndarray, k: int, multi_label: bool) -> np.ndarray:
    y = np.asarray(y)
    return y.astype(bool) if multi_label else np.eye(k, dtype=bool)[y.astype(int)]


def read_valid_split(data) -> tuple[list[str], np.ndarray] | None:
    """(texts, membership) of the dataset's validation split, or None when its folder has none.

    WRENCH folders have valid.json; GoEmotions has dev.tsv (kept to the subset's classes).
    """
    from evals.datasets import strip_trec_labels

    folder = getattr(data, "folder", None)
    if folder is None:
        return None
    folder = Path(folder)
    if (folder / "valid.json").is_file():
        raw = json.loads((folder / "valid.json").read_text(encoding="utf-8"))
        texts = strip_trec_labels([str(row["data"]["text"]) for row in raw.values()])
        y = np.array([int(row["label"]) for row in raw.values()], dtype=int)
        return texts, members_of(y, data.k, False)
    if (folder / "dev.tsv").is_file() and (folder / "labels.txt").is_file():
        names = (folder / "labels.txt").read_text(encoding="utf-8").split()
        texts, rows = [], []
        with (folder / "dev.tsv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                labels = {names[int(v)] for v in row["label"].split(",") if v.strip()}
                if labels & set(data.class_names):
                    texts.append(row["text"])
                    rows.append([c in labels for c in data.class_names])
        return texts, np.array(rows, bool).reshape(-1, data.k)
    return None


def knowledge_for_draw(data, draw) -> Knowledge:
    """The simulated LLM's knowledge for one evals draw (see the module docstring for which rows)."""
    k, multi = data.k, data.multi_label
    unseen = np.setdiff1d(np.arange(len(data.train)), np.concatenate([draw.seed_rows, draw.extra_rows]))
    cue_texts = [data.train.texts[i] for i in unseen]
    cue_members = members_of(data.train.y[unseen], k, multi) if len(unseen) else np.zeros((0, k), bool)
    record_texts = list(data.train.texts) + list(data.test.texts)
    record_members = np.vstack([members_of(data.train.y, k, multi), members_of(data.test.y, k, multi)])
    valid = read_valid_split(data)
    if valid is not None:
        cue_texts += valid[0]
        cue_members = np.vstack([cue_members, valid[1]])
        record_texts += valid[0]
        record_members = np.vstack([record_members, valid[1]])
    return build_knowledge(data.class_names, cue_texts, cue_members, record_texts=record_texts,
                           record_members=record_members, multi_label=multi)
