"""The paper's scaling figures from a sweep and its fit: loss vs compute per size
with the frontier, and the optimal features N* and tokens T* vs compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .fit import ScalingFit


def plot_scaling(results: list[dict], fit: ScalingFit, out_dir: str | Path) -> list[Path]:
    """Write loss_vs_compute.png and optimal_allocation.png into out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = sorted({int(r["n_latents"]) for r in results})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    C = np.array([p.compute for p in fit.frontier])
    grid = np.geomspace(C.min(), C.max() * 2, 50)

    fig, ax = plt.subplots(figsize=(9, 4.6))
    for n, color in zip(sizes, colors):
        rs = sorted((r for r in results if int(r["n_latents"]) == n), key=lambda r: r["flops"])
        ax.plot([r["flops"] for r in rs], [r["loss"] for r in rs], "o-", color=color, ms=4, lw=1, label=f"{n:,} features")
    ax.plot(C, [p.loss for p in fit.frontier], "s", mfc="none", mec="k", ms=9, label="frontier L*(C)")
    lo_hi = np.array([fit.loss.interval(c) for c in grid])
    ax.plot(grid, fit.loss.predict(grid), "k--", lw=1,
            label=f"L* ∝ C^{fit.loss.exponent:.3f} [{fit.loss.exponent_ci[0]:.3f}, {fit.loss.exponent_ci[1]:.3f}]")
    ax.fill_between(grid, lo_hi[:, 0], lo_hi[:, 1], color="k", alpha=0.08)
    if fit.holdout:
        h = fit.holdout
        ax.errorbar([h["compute"]], [h["predicted_loss"]], yerr=[[h["predicted_loss"] - h["interval"][0]], [h["interval"][1] - h["predicted_loss"]]],
                    fmt="x", color="C3", ms=9, capsize=3,
                    label=f"largest budget predicted from the smaller ones (error {h['relative_error']:.1%})")
    ax.set(xscale="log", yscale="log", xlabel="training compute (FLOPs)", ylabel=f"held-out loss: {fit.loss_definition.split(' (')[0]}",
           title="Loss vs compute, one curve per dictionary size")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3, which="both")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))   # the loss often spans less than a decade
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    fig.tight_layout()
    first = out_dir / "loss_vs_compute.png"
    fig.savefig(first, dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, law, key, label in ((axes[0], fit.latents, "n_latents", "optimal features N*"),
                                (axes[1], fit.tokens, "n_tokens", "optimal training tokens T*")):
        ys = [getattr(p, key) for p in fit.frontier]
        edge = [not p.interior for p in fit.frontier]
        ax.plot(C[~np.array(edge)], np.array(ys)[~np.array(edge)], "o", color="C0", label="frontier (interior minimum)")
        ax.plot(C[np.array(edge)], np.array(ys)[np.array(edge)], "o", mfc="none", color="C0", label="frontier (edge of the sizes" + (", not fitted)" if fit.allocation_points == "interior" else ")"))
        ax.plot(grid, law.predict(grid), "k--", lw=1, label=f"∝ C^{law.exponent:.2f} [{law.exponent_ci[0]:.2f}, {law.exponent_ci[1]:.2f}]")
        ax.set(xscale="log", yscale="log", xlabel="training compute (FLOPs)", ylabel=label)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("Compute-optimal allocation")
    fig.tight_layout()
    second = out_dir / "optimal_allocation.png"
    fig.savefig(second, dpi=120)
    plt.close(fig)
    return [first, second]
