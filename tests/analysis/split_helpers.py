"""Synthetic dictionaries with a known answer for the splitting tests: orthonormal
directions as SAEs (W_enc = W_decᵀ, a small negative bias), and rows that are sparse
positive combinations of the large SAE's directions."""

from __future__ import annotations

import numpy as np
import torch

from monosemantic.sae import SAEConfig, make_sae

D = 32


def sae_with(directions: np.ndarray, threshold: float = 0.05):
    """A relu SAE whose decoder rows are `directions` [n, D] and encoder their transpose."""
    sae = make_sae(SAEConfig("relu", d_in=D, n_latents=len(directions)))
    w = torch.tensor(directions, dtype=torch.float32)
    with torch.no_grad():
        sae.W_dec.copy_(w)
        sae.W_enc.copy_(w.t())
        sae.b_enc.fill_(-threshold)
        sae.b_dec.zero_()
    return sae


def basis(n: int, seed: int = 0) -> np.ndarray:
    """n orthonormal directions in D dimensions [n, D]."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(D, D)))
    return q[:, :n].T.astype(np.float32)


def rows_of(directions: np.ndarray, n_rows: int = 3000, active: int = 2, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = np.zeros((n_rows, len(directions)), dtype=np.float32)
    for i in range(n_rows):
        codes[i, rng.choice(len(directions), active, replace=False)] = rng.uniform(0.5, 2.0, active)
    return codes @ directions
