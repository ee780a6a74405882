"""AUROC, the one implementation every scorer and finding uses: the probability that
a positive outscores a negative, ties counting half (Mann-Whitney U / (P·N)).

Computed from mid-ranks in float64, so it is exact for any realistic P and N (the
ranks are half-integers) and the same number whichever caller asks: the concept
catalogue ranks thousands of features at once, the embedding scorer one unit."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata


def auroc_columns(pos, neg) -> np.ndarray:
    """pos [P, n], neg [N, n] (numpy or torch) -> [n] float64, one AUROC per column.
    A column equal everywhere (a feature silent on every text) gets 0.5."""
    pos, neg = _as_2d(pos), _as_2d(neg)
    n_pos, n_neg = pos.shape[0], neg.shape[0]
    if pos.shape[1] != neg.shape[1]:
        raise ValueError(f"auroc: {pos.shape[1]} positive columns vs {neg.shape[1]} negative")
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auroc needs at least one positive and one negative")
    ranks = rankdata(np.concatenate([pos, neg]), axis=0, method="average")
    u = ranks[:n_pos].sum(0) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def auroc(pos, neg) -> float:
    """pos [P], neg [N] -> one AUROC."""
    return float(auroc_columns(_numpy(pos).reshape(-1, 1), _numpy(neg).reshape(-1, 1))[0])


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def _as_2d(x) -> np.ndarray:
    x = _numpy(x)
    return x.reshape(-1, 1) if x.ndim == 1 else x
