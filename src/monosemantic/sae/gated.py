"""Gated SAE (Rajamanoharan et al. 2024), for SAEs trained elsewhere (SAELens
"gated", dictionary_learning's GatedAutoEncoder).

    sae_in = x − b_dec
    gate   = [sae_in @ W_enc + b_gate > 0]                  # which latents fire
    mag    = ReLU(sae_in @ (W_enc · exp(r_mag)) + b_mag)     # how strongly
    f      = gate · mag
    x̂      = f @ W_dec + b_dec

`b_enc` (the base class's encoder bias) is the gate bias b_gate. Inference only, as
SAELens's own GatedSAE: `monosemantic train` does not offer it (its three-term loss
was never tuned here), so `forward` refuses with a one-line error."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import ConfigError
from .base import SAE, ForwardOutput


class GatedSAE(SAE):
    saelens_architecture = "gated"
    apply_b_dec_to_input = True
    unit_norm_decoder = False

    def __init__(self, cfg):
        super().__init__(cfg)
        n = cfg.n_latents
        self.r_mag = nn.Parameter(torch.zeros(n))          # [n], log-scale of the magnitude path
        self.b_mag = nn.Parameter(torch.zeros(n))          # [n]

    def encode(self, x: Tensor) -> Tensor:
        sae_in = self.as_input(x) - self.b_dec                             # [..., d]
        proj = sae_in @ self.W_enc                                         # [..., n], shared by both paths
        gate = (proj + self.b_enc) > 0
        mag = (proj * self.r_mag.exp() + self.b_mag).relu()
        return mag * gate                                                  # [..., n], ≥ 0

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        raise ConfigError("gated SAEs are imported and used here, not trained: "
                          "train relu, topk, batchtopk or jumprelu (`monosemantic train --architecture`)")
