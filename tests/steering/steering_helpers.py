"""SAEs for the steering tests (imported by name; conftest.py only holds fixtures, since
`from conftest import ...` picks another directory's conftest when several test
directories are collected together)."""

from __future__ import annotations

import torch

from monosemantic.sae import SAEConfig, make_sae


def random_sae(d: int, n: int, seed: int = 0, dec_scale: float = 1.0, bias: float = 0.0):
    """A real ReLU SAE with random weights (W_enc = W_decᵀ), sparse-ish on tiny-model residuals."""
    torch.manual_seed(seed)
    sae = make_sae(SAEConfig("relu", d, n))
    with torch.no_grad():
        sae.W_dec.mul_(dec_scale)
        sae.b_enc.fill_(bias)
    return sae.requires_grad_(False)


def orthonormal_sae(d: int, n: int, seed: int = 0):
    """Orthonormal decoder rows, W_enc = W_decᵀ and a large encoder bias, so every
    latent is active and the SAE is linear: re-encoding shows exactly what changed."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=g))              # [d, n], orthonormal columns
    sae = make_sae(SAEConfig("relu", d, n))
    with torch.no_grad():
        sae.W_dec.copy_(q.T)
        sae.W_enc.copy_(q)
        sae.b_enc.fill_(1000.0)
    return sae.requires_grad_(False)
