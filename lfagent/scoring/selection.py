"""Choosing which LFs reach the label model, with a readable reason for every LF left out.

An LF is kept when, in this order:
1. it votes on at least `min_votes` seeds, or it is `vouched` for by meaning (an LLM keyword LF, see
   meaning.py) and its fewer votes are not mostly wrong: vouching stands in for missing evidence only,
   or for evidence too thin to decide (`subscribe` -> spam right on 4 of 5 seeds: the interval
   [0.38, 0.96] holds chance 0.46), when the votes are mostly right and beat chance;
2. the lower bound of its seed-accuracy interval beats chance for the classes it votes, and its seed
   accuracy is above 1/k (below that, a label model reads its votes as no support for its class: an LF
   voting a 2% class right 10% of the time "beats chance" yet only adds noise); an LF in `keywords`
   (an LLM's keyword) must also reach the bar a mined keyword must reach (intervals.keyword_bar), so a
   word the miner rejects does not come back through the LLM;
   an LF in `incremental` (an LLM's LF) is judged again on what it adds: on the seeds where it casts a
   vote no LF in `rules` (the mined keywords that pass the checks above) casts, it must be right more
   often than chance, or what it adds is noise ("love|check out" -> spam: right wherever `check out`
   already voted spam, wrong on every "i love this song" it adds);
   an LF that votes only a class no seed carries cannot be judged by its accuracy (every seed vote it
   casts is a false positive, by construction): it is kept when the rate of those false positives on
   the seeds is under half its coverage of the unlabeled rows, so that most of its unlabeled votes are
   not misfires (with fewer than `min_votes` of them, the lower bound of the rate's interval: seeds that
   cannot show it misfires do not drop it); the label model then weighs it like any other LF;
3. it is not a near-duplicate of a better LF (redundancy graph);
4. it adds to the label model. LFs are tried best first (highest ci_low). With `gain_fn`, an LF
   adds when it covers an unlabeled row no kept LF covers, or raises gain_fn(kept indices) by more
   than `min_gain`. Without `gain_fn`, it adds when it casts a vote (row, class), on a seed or an
   unlabeled row, that no kept LF casts.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict

from lfagent.scoring.checks import check_label_matrix, check_seed_labels
from lfagent.scoring.intervals import keyword_bar, smoothed_precision, wilson_interval
from lfagent.scoring.redundancy import quality_order, redundancy_graph, redundant_with
from lfagent.scoring.stats import LFStats, class_truth, lf_stats

MIN_ADDED_VOTES = 2  # fewer added seed votes than this are too few to call what an LF adds noise

GainFn = Callable[[list[int]], float]


class Selection(BaseModel):
    """The LFs kept (column order) and why each other LF was dropped."""

    model_config = ConfigDict(extra="forbid")
    kept: list[str]
    kept_indices: list[int]
    dropped: dict[str, str]
    stats: list[LFStats]
    gain: float | None = None  # gain_fn(kept_indices) at the end, when gain_fn was given
    on_meaning: list[str] = []  # passed the seed checks only because they were vouched for by meaning


def select_lfs(L_seed, y_seed, L_unl, *, cardinality: int, names, lf_labels=None, min_votes: int = 3,
               redundancy: float = 0.9, gain_fn: GainFn | None = None,
               min_gain: float = 1e-6, vouched: set[str] | frozenset[str] = frozenset(),
               keywords: set[str] | frozenset[str] = frozenset(),
               incremental: set[str] | frozenset[str] = frozenset(),
               rules: set[str] | frozenset[str] = frozenset()) -> Selection:
    """Keep the LFs that beat chance on the seeds, are not duplicates, and add to the label model.

    Deterministic and independent of column order: ties break on coverage, then name length, then name.
    `gain_fn(kept_indices)` (column indices into L) returns e.g. a cross-fitted label-model seed
    accuracy; it may be called with an empty list. Set `redundancy` > 1 to skip the duplicate check.
    """
    stats = lf_stats(L_seed, y_seed, L_unl, cardinality=cardinality, names=names, lf_labels=lf_labels)
    L_seed = check_label_matrix(L_seed, cardinality, what="L_seed")
    L_unl = check_label_matrix(L_unl, cardinality, what="L_unl")
    truth = class_truth(check_seed_labels(np.asarray(y_seed), L_seed.shape[0], cardinality), cardinality)
    unseeded = set(np.flatnonzero(~truth.any(axis=0)).tolist())
    dropped = {s.name: reason for s in stats
               if (reason := unseeded_reason(s, min_votes, L_seed.shape[0]) if s.label in unseeded else
                   screening_reason(s, min_votes, cardinality, vouched=s.name in vouched,
                                    keyword=s.name in keywords))}
    on_meaning = [s.name for s in stats if s.name in vouched and s.label not in unseeded and _stands_in(s, min_votes)]
    index = {s.name: j for j, s in enumerate(stats)}
    if incremental:
        rule_columns = [index[s.name] for s in stats if s.name in rules and s.name not in dropped]
        dropped.update({s.name: reason for s in stats if s.name in incremental and s.name not in dropped
                        and s.label not in unseeded
                        and (reason := added_votes_reason(L_seed, truth, index[s.name], rule_columns))})
    survivors = [s for s in stats if s.name not in dropped]

    if survivors and redundancy <= 1:
        columns = [index[s.name] for s in survivors]
        both = np.vstack([L_seed[:, columns], L_unl[:, columns]])
        graph = redundancy_graph(both, [s.name for s in survivors], threshold=redundancy,
                                 cardinality=cardinality)
        for name, (twin, jaccard) in redundant_with(survivors, graph).items():
            dropped[name] = f"redundant with {twin} ({jaccard:.2f} overlap)"
        survivors = [s for s in survivors if s.name not in dropped]

    order = [index[s.name] for s in quality_order(survivors)]
    if gain_fn is None:
        kept, reasons, gain = _forward_by_new_votes(np.vstack([L_seed, L_unl]), order, cardinality), {}, None
    else:
        kept, reasons, gain = _forward_by_gain(L_unl, order, gain_fn, min_gain)
    dropped.update({stats[j].name: reasons.get(j, "adds nothing to the label model: every vote it "
                                                  "casts is already cast by a kept LF")
                    for j in order if j not in kept})
    kept_indices = sorted(kept)
    return Selection(kept=[stats[j].name for j in kept_indices], kept_indices=kept_indices,
                     dropped={s.name: dropped[s.name] for s in stats if s.name in dropped},
                     stats=stats, gain=gain, on_meaning=on_meaning)


def screening_reason(stat: LFStats, min_votes: int, cardinality: int = 2, vouched: bool = False,
                     keyword: bool = False) -> str | None:
    """Why an LF fails the seed checks (too few votes, no better than chance), or None if it passes.

    `keyword`: it is held to the mined keywords' bar too (its class prior is its `chance`).
    """
    if vouched and _stands_in(stat, min_votes):
        return None
    if stat.seed_votes == 0:
        return f"no seed votes (needs >= {min_votes})"
    if stat.seed_votes < min_votes:
        return f"only {stat.seed_votes} seed vote{'s' * (stat.seed_votes != 1)} (needs >= {min_votes})"
    if stat.seed_accuracy is not None and stat.seed_accuracy <= 1 / cardinality:
        return (f"seed accuracy {stat.seed_accuracy:.2f} is not above 1/{cardinality}: its votes would not "
                f"count as support for its class")
    if not stat.beats_chance:
        return (f"seed accuracy {stat.seed_accuracy:.2f} [{stat.ci_low:.2f}, {stat.ci_high:.2f}]: "
                f"lower bound {stat.ci_low:.2f} does not beat chance {stat.chance:.2f}")
    if keyword:
        precision = float(smoothed_precision(stat.seed_correct, stat.seed_votes, stat.chance))
        bar = float(keyword_bar(stat.chance))
        if precision < bar:
            return (f"smoothed seed precision {precision:.2f} ({stat.seed_correct} of {stat.seed_votes}) is below "
                    f"{bar:.2f}, the bar a mined keyword must reach")
    return None


def unseeded_reason(stat: LFStats, min_votes: int, n_seeds: int) -> str | None:
    """Why an LF voting only a class no seed carries is left out (see the module docstring), or None.

    Its seed votes are misfires on records not of its class; at that rate f, a share of about f / coverage
    of its unlabeled votes are misfires too, so it must misfire at under half its coverage (its votes then
    mostly right). Below `min_votes` misfires the rate is too uncertain to drop it on: the lower bound of
    its interval is held to that bar."""
    if stat.coverage == 0:
        return "votes a class no seed carries, and on no unlabeled record"
    rate = stat.seed_votes / n_seeds if n_seeds else 0.0
    low, _ = wilson_interval(stat.seed_votes, n_seeds)
    few = stat.seed_votes < min_votes
    judged = low if few else rate
    if judged < stat.coverage / 2:
        return None
    return (f"votes a class no seed carries: its {stat.seed_votes} seed votes are all false positives, a rate "
            f"({'at least ' * few}{judged:.3f}) not under half its unlabeled coverage "
            f"({stat.coverage:.3f}): most of its votes would be misfires")


def added_votes_reason(L_seed: np.ndarray, truth: np.ndarray, j: int, rule_columns: list[int]) -> str | None:
    """Why LF `j`'s seed votes that no rule casts are noise (no better than chance), or None.

    `truth` is the (n, k) boolean class matrix of the seeds; chance is the mean share of the classes voted.
    """
    rows = np.flatnonzero(L_seed[:, j] != -1)
    classes = L_seed[rows, j]
    cast = (L_seed[np.ix_(rows, rule_columns)] == classes[:, None]).any(axis=1)  # (rows, 0) -> all False
    rows, classes = rows[~cast], classes[~cast]
    if len(rows) < MIN_ADDED_VOTES:
        return None
    right = int(truth[rows, classes].sum())
    chance = float(truth.mean(axis=0)[classes].mean())
    if right / len(rows) > chance:
        return None
    return (f"right on {right} of the {len(rows)} seeds where it votes and no mined keyword does "
            f"(chance {chance:.2f}): what it adds to the keywords is noise")


def _stands_in(stat: LFStats, min_votes: int) -> bool:
    """Vouching stands in for seed evidence that cannot decide: too few votes, not mostly wrong; or an
    interval that does not clear chance around votes mostly right and above chance. Seeds that clear
    chance decide by themselves; seeds that lean against the LF are not overruled."""
    if stat.seed_votes < min_votes:
        return stat.seed_incorrect <= stat.seed_correct
    # Mostly right implies a vote, so seed_accuracy is set.
    return not stat.beats_chance and stat.seed_correct > stat.seed_incorrect and stat.seed_accuracy > stat.chance


def _forward_by_new_votes(L: np.ndarray, order: list[int], cardinality: int) -> set[int]:
    """Keep each LF (best first) that casts some (row, class) vote no kept LF casts."""
    n, k = L.shape[0], cardinality
    cast = np.zeros(n * k, dtype=bool)  # flat (row, class) cells already voted by a kept LF
    kept: set[int] = set()
    for j in order:
        rows = np.flatnonzero(L[:, j] != -1)
        cells = rows * k + L[rows, j]
        if rows.size and not cast[cells].all():
            kept.add(j)
            cast[cells] = True
    return kept


def _forward_by_gain(L_unl: np.ndarray, order: list[int], gain_fn: GainFn,
                     min_gain: float) -> tuple[set[int], dict[int, str], float]:
    """Keep each LF (best first) that covers new unlabeled rows or raises gain_fn by > min_gain."""
    covered = np.zeros(L_unl.shape[0], dtype=bool)
    kept: list[int] = []
    reasons: dict[int, str] = {}
    current: float | None = None  # gain_fn(kept), computed only when a comparison needs it
    for j in order:
        votes = L_unl[:, j] != -1
        if (votes & ~covered).any():
            kept.append(j)
            covered |= votes
            current = None
            continue
        if current is None:
            current = float(gain_fn(sorted(kept)))
        trial = float(gain_fn(sorted(kept + [j])))
        if trial > current + min_gain:
            kept.append(j)
            current = trial
        else:
            reasons[j] = (f"adds nothing to the label model: covers no new row and moves the "
                          f"label-model score {current:.3f} -> {trial:.3f}")
    final = float(gain_fn(sorted(kept))) if current is None else current
    return set(kept), reasons, final


def seed_errors(L_seed, y_seed, lf_index: int, *, label: int | None = None,
                cardinality: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seed rows to show when refining LF `lf_index`: (false positives, misses).

    False positives: rows where it voted c but the truth is not c. Misses: rows of class c where it
    abstained, for c = `label` or, by default, each class it voted on the seeds. y_seed may be class
    indices or (n, k) multi-hot.
    """
    L_seed = np.asarray(L_seed)
    y = np.asarray(y_seed)
    if cardinality is None:
        cardinality = (y.shape[1] if y.ndim == 2 else
                       max(int(L_seed.max(initial=-1)), int(y.max(initial=-1)), label or 0) + 1)
    k = int(cardinality)
    L_seed = check_label_matrix(L_seed, k, what="L_seed")
    truth = class_truth(check_seed_labels(y, L_seed.shape[0], k), k)
    votes = L_seed[:, lf_index]
    voted = votes != -1
    hit = np.zeros(len(votes), dtype=bool)
    hit[voted] = truth[np.flatnonzero(voted), votes[voted]]
    classes = [label] if label is not None else sorted(set(votes[voted].tolist()))
    of_its_classes = truth[:, classes].any(axis=1) if classes else np.zeros(len(votes), dtype=bool)
    return np.flatnonzero(voted & ~hit), np.flatnonzero(of_its_classes & ~voted)
