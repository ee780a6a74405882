"""The geometry figure: one UMAP map of every member's decoder directions, coloured
by member, the largest clusters named by their shared top tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MEMBER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]  # the web map uses the same


def plot_map(xy: np.ndarray, member: np.ndarray, names: list[str], clusters: list, path: Path, n_named: int = 15) -> Path:
    """xy [n, 2]; member [n] index into names; clusters: ClusterLabel (largest first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import atomic

    fig, ax = plt.subplots(figsize=(9, 8))
    # the largest member first, so the smaller (fewer) points are drawn on top
    for m in sorted(range(len(names)), key=lambda i: -int(np.sum(member == i))):
        sel = member == m
        ax.scatter(xy[sel, 0], xy[sel, 1], s=1.5 if sel.sum() > 5000 else 4, alpha=0.5, lw=0,
                   color=MEMBER_COLOURS[m % len(MEMBER_COLOURS)], label=f"{names[m]} ({int(sel.sum()):,})", rasterized=True)
    for c in clusters[:n_named]:
        if c.tokens:
            ax.annotate(c.label[:40], (c.x, c.y), fontsize=7, ha="center",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.6", "alpha": 0.8})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Decoder directions of the family, one UMAP (cosine); clusters named by shared top tokens")
    ax.legend(markerscale=5, loc="best", fontsize=8)
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight"))
    plt.close(fig)
    return path
