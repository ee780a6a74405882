"""Reconstruction quality: MSE, fraction of variance explained (FVE), L0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch


@dataclass(frozen=True)
class ReconstructionStats:
    mse: float  # mean over tokens of ‖x − x̂‖², in the units of x
    fve: float  # 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖²
    l0: float  # mean number of active features per token
    tokens: int


@torch.no_grad()
def reconstruction_stats(sae, batches: Iterable[torch.Tensor]) -> ReconstructionStats:
    """Accumulate over batches of [B, d] activations (any units the SAE takes)."""
    sq_err = total = l0 = 0.0
    n = 0
    sum_x = sum_sq = None
    for x in batches:
        x = x.float()
        f = sae.encode(x)  # [B, n_latents], ≥ 0
        x_hat = sae.decode(f).float()
        sq_err += float((x - x_hat).pow(2).sum())
        l0 += float((f > 0).sum())
        sum_x = x.sum(0) if sum_x is None else sum_x + x.sum(0)
        sum_sq = float(x.pow(2).sum()) + (sum_sq or 0.0)
        n += x.shape[0]
    if n == 0:
        raise ValueError("no activations to evaluate")
    total = sum_sq - float(sum_x.pow(2).sum()) / n  # Σ‖x − mean‖²
    return ReconstructionStats(mse=sq_err / n, fve=1.0 - sq_err / total, l0=l0 / n, tokens=n)
