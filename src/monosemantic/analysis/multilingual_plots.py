"""The multilingual analysis's two figures, from its result.json alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import atomic  # noqa: E402


def _save(fig, path: Path) -> Path:
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    plt.close(fig)
    return path


def scores(result: dict, path: Path) -> Path:
    """Live features' scores on aligned passages vs the shuffled alignment, with the threshold."""
    h = result["histogram"]
    edges = np.asarray(h["edges"])
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(centers, h["shuffled"], width, alpha=0.6, label="shuffled alignment (baseline)", color="#999")
    ax.bar(centers, h["aligned"], width, alpha=0.6, label="aligned passages", color="#3b6ea5")
    ax.axvline(result["threshold"], color="#c00", lw=1, label=f"threshold {result['threshold']:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel(f"mean pairwise Pearson r across {len(result['languages'])} languages ({result['pool']} per passage)")
    ax.set_ylabel("live features")
    ax.set_title(f"{result['agnostic_fraction']:.1%} language-agnostic, {result['specific_fraction']:.1%} language-specific")
    ax.legend(fontsize=8)
    return _save(fig, path)


def by_size(result: dict, path: Path) -> Path:
    rows = sorted(result["by_size"], key=lambda r: r["n_latents"])
    n = [r["n_latents"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(n, [r["agnostic_fraction"] for r in rows], "o-", label="language-agnostic")
    ax.plot(n, [r["cross_lingual_fraction"] for r in rows], "^-", label="  of which cross-lingual")
    ax.plot(n, [r["specific_fraction"] for r in rows], "s-", label="language-specific")
    ax.plot(n, [r["baseline_agnostic_fraction"] for r in rows], "x:", color="#999", label="shuffled above threshold")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("SAE latents")
    ax.set_ylabel("fraction of live features")
    ax.legend(fontsize=8)
    return _save(fig, path)
