"""The report's plots as standalone SVG documents (matplotlib, Agg; text drawn as paths, no fonts needed).

Each function takes plain figures and returns SVG text; html.py embeds them as data URIs, which keeps
their internal ids from clashing and lets the page check that every image decoded.
"""
from __future__ import annotations

import io

import numpy as np

from lfagent.report.summary import Reliability

KEPT, DROPPED, ACCENT, IDEAL = "#2b6cb0", "#c0c4cc", "#dd6b20", "#718096"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "lfagent", "svg.fonttype": "path", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _to_svg(fig) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def reliability_svg(rel: Reliability) -> str:
    """Reliability diagram: observed accuracy per confidence bin against the diagonal, bars for counts."""
    plt = _pyplot()
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(4.6, 4.6), height_ratios=[3, 1], sharex=True)
    filled = [b for b in rel.bins if b.count]
    ax.plot([0, 1], [0, 1], linestyle="--", color=IDEAL, linewidth=1, label="perfectly calibrated")
    if filled:
        ax.plot([b.mean_confidence for b in filled], [b.accuracy for b in filled], marker="o", color=ACCENT,
                label=f"cross-fitted seeds (ECE {rel.ece:.3f})")
    ax.set_ylabel("observed")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", frameon=False)
    centers = [(b.lower + b.upper) / 2 for b in rel.bins]
    ax_count.bar(centers, [b.count for b in rel.bins], width=0.09, color=KEPT)
    ax_count.set_ylabel("count")
    ax_count.set_xlabel("predicted probability")
    ax_count.set_xlim(0, 1)
    return _to_svg(fig)


def lf_scatter_svg(coverage: list[float], accuracy: list[float | None], kept: list[bool]) -> str:
    """Candidate LFs: unlabeled coverage against seed accuracy, kept vs dropped."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    cov = np.asarray(coverage, dtype=float)
    acc = np.array([np.nan if a is None else a for a in accuracy], dtype=float)
    keep = np.asarray(kept, dtype=bool)
    for mask, colour, label, size in ((~keep, DROPPED, "dropped", 14), (keep, KEPT, "kept", 22)):
        ok = mask & ~np.isnan(acc)
        ax.scatter(cov[ok], acc[ok], s=size, c=colour, alpha=0.85, label=f"{label} ({int(mask.sum())})",
                   edgecolors="none")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, max(1.0, float(cov.max()) if len(cov) else 1.0))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage on unlabeled records")
    ax.set_ylabel("seed accuracy")
    ax.legend(loc="lower right", frameon=False)
    return _to_svg(fig)


def class_distribution_svg(distribution: dict[str, int]) -> str:
    """Horizontal bars: silver records per class."""
    plt = _pyplot()
    names = list(distribution)
    counts = [distribution[n] for n in names]
    fig, ax = plt.subplots(figsize=(5.2, 0.5 + 0.35 * max(len(names), 2)))
    bars = ax.barh(range(len(names)), counts, color=KEPT)
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    total = sum(counts) or 1
    for bar, count in zip(bars, counts):
        ax.annotate(f"{count} ({count / total:.0%})", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center")
    ax.set_xlim(0, max(counts + [1]) * 1.25)
    ax.set_xlabel("silver records")
    return _to_svg(fig)


def disagreement_svg(rate: np.ndarray, names: list[str]) -> str:
    """Heatmap of pairwise disagreement among kept LFs (grey where a pair never votes on the same record)."""
    plt = _pyplot()
    m = len(names)
    side = min(9.0, 2.2 + 0.28 * m)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    rate = np.array(rate, dtype=float)
    np.fill_diagonal(rate, np.nan)  # an LF always agrees with itself: not information
    masked = np.ma.masked_invalid(rate)
    cmap = plt.get_cmap("Reds").with_extremes(bad="#edf0f4")
    top = float(np.nanmax(rate)) if np.isfinite(rate).any() else 1.0
    image = ax.imshow(masked, cmap=cmap, vmin=0, vmax=max(top, 0.05))
    short = [n if len(n) <= 28 else n[:27] + "…" for n in names]
    if m <= 60:
        ax.set_xticks(range(m), labels=short, rotation=90, fontsize=7)
        ax.set_yticks(range(m), labels=short, fontsize=7)
    if m <= 15:
        for i in range(m):
            for j in range(m):
                text = "–" if i == j else ("" if np.isnan(rate[i, j]) else f"{rate[i, j]:.2f}")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if not np.isnan(rate[i, j]) and rate[i, j] > 0.6 * top else "#1a202c")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="conflict rate")
    return _to_svg(fig)
