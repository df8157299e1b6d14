"""Judging an LF by its agreement with the current model on the unlabeled records.

A cue the LLM recalls is often rare on 100 seeds: two votes cannot tell a good cue from a decoy. The
unlabeled records can: where the LF votes class c, the model fitted without the LLM's LFs (label model over
the other LFs, joined with the embedding expert, inside the same cross-fitting fold) gives class c some
probability. An LF whose records the model puts in its class more often than chance agrees with the rest of
the evidence, and the label model can weigh it; one whose records the model puts elsewhere (words of
another class) disagrees and stays out.

The measure: `agreement` = mean over the LF's unlabeled votes of the model's probability of the class voted;
`bar` = the mean over those votes of max(the class's share of the model's probability mass, 1 / k), what a
vote for that class would get by chance (and 1 / k: below it a label model reads the votes as no support);
to agree, the LF must also clear the mean of the model's strongest other class on those records, and an
LLM keyword must clear the bar a mined keyword must reach (intervals.keyword_bar: 0.1 above that chance, at
least 0.6), so a word for a 90% class that the model puts in its class 92% of the time, a shade above saying
it always, does not get in on agreement when the miner would reject it on the seeds. A
Wilson interval around `agreement` (soft successes over the votes) must clear the bar to agree, or lie wholly
under it to disagree; in between, or with fewer than `min_records` votes, it is undecided and the seeds and
the meaning check decide as before. No margin is tuned: the interval alone absorbs the noise of few matches.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

from lfagent.scoring.intervals import keyword_bar, wilson_intervals

MIN_RECORDS = 5
Verdict = Literal["agrees", "disagrees", "undecided"]


class Agreement(BaseModel):
    """How one LF's unlabeled votes sit with the current model."""

    name: str
    records: int  # unlabeled records it votes on
    agreement: float  # mean model probability of the class it voted, over those records
    low: float
    high: float
    bar: float  # what chance gives (see the module docstring)
    rival: float = 0.0  # mean of the model's strongest other class on those records: agreeing must clear it too
    cue_bar: float | None = None  # for an LLM keyword: the mined keywords' bar, which agreeing must clear too
    verdict: Verdict

    def reason(self) -> str:
        figures = (f"on the {self.records} unlabeled records it votes on, the model without the LLM's LFs gives "
                   f"its class {self.agreement:.2f} [{self.low:.2f}, {self.high:.2f}] (chance {self.bar:.2f})")
        if self.verdict == "disagrees":
            return f"disagrees with the current model: {figures}"
        if self.verdict == "agrees":
            return f"agrees with the current model: {figures}"
        if self.cue_bar is not None and self.bar < self.low <= self.cue_bar and self.records >= MIN_RECORDS:
            return (f"agreement with the current model undecided: {figures}, short of {self.cue_bar:.2f}, the bar "
                    f"a mined keyword must reach")
        if self.low > self.bar and self.records >= MIN_RECORDS:
            return (f"agreement with the current model undecided: {figures}, but its strongest other class gets "
                    f"{self.rival:.2f} there")
        if self.records < MIN_RECORDS:
            return f"votes on {self.records} unlabeled records: too few to judge its agreement with the model"
        return f"agreement with the current model undecided: {figures}"


def agreement_with_model(L_unl: np.ndarray, probs: np.ndarray, names: list[str], *,
                         keywords: set[str] | frozenset[str] = frozenset(), min_records: int = MIN_RECORDS,
                         z: float = 1.96) -> dict[str, Agreement]:
    """Each LF's (column of L_unl, -1 = abstain) agreement with the model's probabilities (n x k) on the
    same records. Single-label only: `probs` rows sum to one. LFs named in `keywords` (the LLM's keywords)
    must also clear the mined keywords' bar to agree.

    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]] * 5)
    >>> L = np.array([[0, 1], [0, 1], [-1, -1], [-1, -1]] * 5)   # column 0 votes class 0 where the model says 0
    >>> [a.verdict for a in agreement_with_model(L, probs, ["right", "wrong"]).values()]
    ['agrees', 'disagrees']
    """
    L_unl = np.asarray(L_unl)
    probs = np.asarray(probs, dtype=float)
    if L_unl.ndim != 2 or probs.ndim != 2 or L_unl.shape[0] != probs.shape[0] or L_unl.shape[1] != len(names):
        raise ValueError(f"L_unl ({L_unl.shape}) must be n x {len(names)} and probs ({probs.shape}) n x k")
    k = probs.shape[1]
    share = probs.mean(axis=0) if len(probs) else np.full(k, 1.0 / max(k, 1))
    chance = np.maximum(share, 1.0 / max(k, 1))
    out = {}
    for j, name in enumerate(names):
        rows = np.flatnonzero(L_unl[:, j] != -1)
        voted = L_unl[rows, j].astype(int)
        if len(rows) == 0:
            out[name] = Agreement(name=name, records=0, agreement=0.0, low=0.0, high=1.0, bar=0.0,
                                  verdict="undecided")
            continue
        agreement = float(probs[rows, voted].mean())
        others = probs[rows].copy()
        others[np.arange(len(rows)), voted] = -np.inf
        bar = float(chance[voted].mean())
        # To agree, beating chance is not enough where the model splits a record between two classes: the
        # LF's class must also outweigh the model's strongest other class there, or the LF only pushes records
        # the model is unsure of toward its class (a decoy next to a rare class the model confuses). To
        # disagree it must fall below chance: a class the model cannot speak for (no seed) is not held
        # against the LF.
        rival = float(others.max(axis=1).mean())
        cue_bar = float(keyword_bar(bar)) if name in keywords else None
        low, high = (float(v) for v in wilson_intervals(min(agreement * len(rows), len(rows)), len(rows), z=z))
        verdict: Verdict = "undecided"
        if len(rows) >= min_records:
            verdict = ("agrees" if low > max(bar, rival, cue_bar or 0.0) else "disagrees" if high < bar
                       else "undecided")
        out[name] = Agreement(name=name, records=len(rows), agreement=agreement, low=float(low), high=float(high),
                              bar=bar, rival=rival, cue_bar=cue_bar, verdict=verdict)
    return out
