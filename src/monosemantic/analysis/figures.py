"""The PNG figures of the splitting and completeness analyses (Agg backend); each
function takes plain data and writes one file atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import atomic

MAX_BIN = 8   # children counts above this share the last bar


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    plt.close(fig)
    return path


def children_counts_figure(pairs: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """One panel per (label, children count of each alive parent): how many parents
    have 0, 1, 2, ... children, the split ones (≥ 2) highlighted."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 3.2), squeeze=False)
    for ax, (label, counts) in zip(axes[0], pairs):
        bins = np.bincount(np.minimum(counts, MAX_BIN), minlength=MAX_BIN + 1)
        colours = ["#bbbbbb", "#6699cc"] + ["#cc5533"] * (MAX_BIN - 1)
        ax.bar(np.arange(MAX_BIN + 1), bins, color=colours)
        ax.set_xticks(np.arange(MAX_BIN + 1), [str(i) for i in range(MAX_BIN)] + [f"≥{MAX_BIN}"])
        split = float((counts >= 2).mean()) if len(counts) else 0.0
        ax.set_title(f"{label}: {100 * split:.1f} % split (≥ 2 children)", fontsize=10)
        ax.set_xlabel("children in the larger SAE")
        ax.set_ylabel("parent features")
        ax.set_yscale("symlog", linthresh=10)
    fig.tight_layout()
    return _save(plt, fig, path)


def completeness_figure(members: list[dict], points: list[dict], fit: dict | None, path: Path) -> Path:
    """Presence (jittered 0/1) of every judged concept in every member against
    frequency x alive features, log x, with the fitted sigmoid and its midpoint."""
    from .concept_presence import sigmoid

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    rng = np.random.default_rng(0)
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(members)))
    for member, colour in zip(members, colours):
        mine = [p for p in points if p["member"] == member["name"]]
        x = np.array([p["frequency"] * member["alive"] for p in mine])
        y = np.array([float(p["present"]) for p in mine]) + rng.uniform(-0.04, 0.04, len(mine))
        ax.scatter(x, y, s=10, alpha=0.6, color=colour, label=f"{member['name']} ({member['alive']:,} alive)")
    if fit is not None:
        xs = np.array([p["frequency"] * m["alive"] for m in members for p in points if p["member"] == m["name"]])
        grid = np.geomspace(xs.min(), xs.max(), 200)
        ax.plot(grid, sigmoid(np.log10(grid), fit["midpoint_log10"], fit["width_log10"]), color="black", lw=1.5,
                label=f"sigmoid, midpoint {fit['midpoint']:.3g}")
        ax.axvline(fit["midpoint"], color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("concept frequency × alive features")
    ax.set_ylabel("has a specific feature")
    ax.set_yticks([0, 0.5, 1])
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return _save(plt, fig, path)
