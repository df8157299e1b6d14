"""Vouching by meaning, for LLM keyword LFs whose seed evidence is too thin to judge.

A keyword the LLM copied from one seed text rarely occurs on other seeds, so the seeds cannot judge it
(its right vote on the text it came from does not count). It is vouched for by meaning when the keyword
and the unlabeled records it matches both sit nearest its own class's description (sentence
embeddings), and it matches at least `min_matches` records but no more than `max_share` times its
class's share of them (a cue for a 3% class that fires on a third of the corpus is no cue). Vouching
only stands in for missing evidence: with enough judged seed votes the seeds decide (selection.py).
"""
from __future__ import annotations

import numpy as np


def vouched_by_meaning(term_emb: np.ndarray, matched_emb: np.ndarray, class_emb: np.ndarray, label: int,
                       prior: float, n_records: int, *, min_matches: int = 3, max_share: float = 2.0) -> bool:
    """Whether the keyword (term_emb) and the records it matches (matched_emb, rows) mean class `label`.

    class_emb holds one embedding per class (its name and description); n_records is the number of
    unlabeled records the matches were found among; prior is the class's share of the seeds.
    """
    matches = len(matched_emb)
    if matches < min_matches or matches > max_share * prior * n_records:
        return False
    term_class = int(np.argmax(class_emb @ np.asarray(term_emb)))
    records_class = int(np.argmax(class_emb @ np.asarray(matched_emb).mean(axis=0)))
    return term_class == label and records_class == label
