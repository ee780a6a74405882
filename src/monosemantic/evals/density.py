"""Feature firing densities: dead and dense fractions and the log-density histogram
(the paper's feature-density plot)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

DENSE_THRESHOLD = 0.1  # fires on more than 10 % of tokens


@dataclass(frozen=True)
class DensityStats:
    dead_fraction: float  # never fired within `window_tokens`
    dense_fraction: float  # fired on > 10 % of tokens
    window_tokens: int
    log10_density_hist: list[int]  # counts of live features per bin
    log10_density_edges: list[float]
    densities: np.ndarray  # [n_latents], fraction of tokens each fires on


@torch.no_grad()
def firing_counts(sae, batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, int]:
    counts, n = None, 0
    for x in batches:
        fired = (sae.encode(x.float()) > 0).sum(0)  # [n_latents]
        counts = fired if counts is None else counts + fired
        n += x.shape[0]
    return counts, n


def density_stats(counts: torch.Tensor, n_tokens: int, bins: int = 40) -> DensityStats:
    density = counts.double().numpy() / max(n_tokens, 1)
    live = density[density > 0]
    lo = np.floor(np.log10(1.0 / max(n_tokens, 1)))
    hist, edges = np.histogram(np.log10(live), bins=bins, range=(lo, 0.0))
    return DensityStats(
        dead_fraction=float((density == 0).mean()),
        dense_fraction=float((density > DENSE_THRESHOLD).mean()),
        window_tokens=n_tokens,
        log10_density_hist=hist.tolist(),
        log10_density_edges=edges.tolist(),
        densities=density,
    )
