"""The report's matplotlib figures (Agg backend: no display needed). Each function
takes plain data and writes one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import atomic  # noqa: E402

X_KEYS = ("step", "tokens")
# bookkeeping columns of metrics.jsonl: monotone counters, not training curves
NOT_CURVES = ("elapsed_s", "flops", "dead_window_tokens")
CURVE_ORDER = ("loss", "mse", "fve", "l0", "dead_fraction")


def _save(fig, path: Path) -> Path:
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    plt.close(fig)
    return path


def training_curves(records: list[dict], path: Path) -> Path | None:
    """One panel per numeric key of metrics.jsonl against step (or line number)."""
    found = {k for r in records for k, v in r.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in X_KEYS + NOT_CURVES}
    keys = [k for k in CURVE_ORDER if k in found] + sorted(found - set(CURVE_ORDER))
    if not keys:
        return None
    x_key = "step" if any("step" in r for r in records) else None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r.get(x_key, i) if x_key else i, r[key]) for i, r in enumerate(records)
               if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, lw=1.2)
            if key in ("loss", "mse", "l0", "l1", "mse_loss", "l1_loss", "sparsity_loss") and min(ys) > 0 and max(ys) / min(ys) > 20:
                ax.set_yscale("log")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel(x_key or "logged step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def density_histogram(densities: np.ndarray, n_tokens: int, path: Path) -> Path:
    """The paper's feature-density plot: live features by log10(firing density)."""
    live = densities[densities > 0]
    lo = math.floor(math.log10(1.0 / max(n_tokens, 1)))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(np.log10(live) if len(live) else [], bins=40, range=(lo, 0), color="#3b6ea5")
    ax.set_xlabel("log10(feature density)")
    ax.set_ylabel("features")
    dead = float((densities == 0).mean()) if len(densities) else 0.0
    ax.set_title(f"{len(live):,} live features; {dead:.1%} dead in {n_tokens:,} tokens", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def density_from_eval(hist: list[int], edges: list[float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.stairs(hist, edges, fill=True, color="#3b6ea5")
    ax.set_xlabel("log10(feature density)")
    ax.set_ylabel("features")
    ax.set_title("live features (from eval.json)", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def l0_histogram(counts: list[int], path: Path) -> Path:
    """Tokens by number of active features."""
    counts = np.asarray(counts)
    nz = np.nonzero(counts)[0]
    hi = int(nz[-1]) + 1 if len(nz) else 1
    mean = float((np.arange(len(counts)) * counts).sum() / max(counts.sum(), 1))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(np.arange(hi), counts[:hi], width=1.0, color="#a55b3b")
    ax.set_xlabel("active features per token (L0)")
    ax.set_ylabel("tokens")
    ax.set_title(f"mean L0 {mean:.1f}", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)
