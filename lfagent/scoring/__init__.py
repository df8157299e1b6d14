"""Scoring LFs: coverage, overlap, conflict, seed accuracy with Wilson intervals, redundancy, selection.

Pure numpy/networkx: label matrices in, pydantic models out; no I/O.
"""
from lfagent.scoring.intervals import wilson_interval, wilson_intervals
from lfagent.scoring.redundancy import prune_redundant, redundancy_graph, vote_jaccard
from lfagent.scoring.selection import Selection, screening_reason, seed_errors, select_lfs
from lfagent.scoring.stats import LFStats, lf_stats
from lfagent.scoring.table import format_table, lf_summary_table

__all__ = ["LFStats", "Selection", "format_table", "lf_stats", "lf_summary_table", "prune_redundant",
           "redundancy_graph", "screening_reason", "seed_errors", "select_lfs", "vote_jaccard",
           "wilson_interval", "wilson_intervals"]
