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
    saelens_imports = ("gated",)
    saelens_renames = {"b_enc": "b_gate"}
    apply_b_dec_to_input = True
    unit_norm_decoder = False

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"r_mag": self.r_mag.float(), "b_mag": self.b_mag.float()}  # unchanged by folding the scale into W_enc

    @classmethod
    def extra_tensor_shapes(cls, cfg) -> dict[str, tuple[int, ...]]:
        return {"r_mag": (cfg.n_latents,), "b_mag": (cfg.n_latents,)}

    @torch.no_grad()
    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.r_mag.copy_(tensors["r_mag"])
        self.b_mag.copy_(tensors["b_mag"])

    @classmethod
    def absorb_input_shift(cls, tensors: dict[str, Tensor], moved: Tensor) -> dict[str, Tensor]:
        # both paths read sae_in @ W_enc; the magnitude path scaled by exp(r_mag)
        return tensors | {"b_enc": tensors["b_enc"] + moved, "b_mag": tensors["b_mag"] + moved * tensors["r_mag"].exp()}

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
