"""ReLU SAE, Anthropic's April 2024 recipe (the project's default).

    f  = ReLU(x @ W_enc + b_enc)            # no b_dec subtracted at the input
    x̂  = f @ W_dec + b_dec
    L  = ‖x − x̂‖² + λ Σᵢ fᵢ ‖W_dec,i‖       # decoder left unnormalised

Saved for SAELens as "standard" with apply_b_dec_to_input = False, which is the same
formula. Init: decoder rows random directions of norm 0.1 (Anthropic: 0.05–1),
W_enc = W_decᵀ, b_enc 0, b_dec the geometric median of the first batch (as topk.py).
b_dec at 0 (the recipe read literally) left the data's large mean (‖mean‖ 129 vs
mean ‖x‖ 179 at layer 15 of SmolLM2) in every decoder row: mean cosine 0.48 with the
mean, "," among the top-10 promoted tokens of 69 % of features, and strong clamps that
mostly add the mean (docs/training.md, "Decoder bias")."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SAE, ForwardOutput, mse_term


class ReLUSAE(SAE):
    uses = ("l1_coefficient",)
    sparsity_knob, knob_label, penalty_term = "l1_coefficient", "l1_", "l1"
    # benchmarks/train_throughput.py: x1.55–1.77 in bfloat16, the main job's FVE unchanged (train/loop.py)
    bf16_safe = True
    saelens_architecture = "standard"
    saelens_imports = ("standard",)
    apply_b_dec_to_input = False
    unit_norm_decoder = False
    decoder_init_norm = 0.1
    b_dec_at_median = True

    def encode(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()                                     # [..., n], ≥ 0

    def encode_latents(self, x: Tensor, latents: Tensor) -> Tensor:
        # each latent depends only on its own encoder column: compute just these, with
        # pre_acts' fused addmm (bit-equal to encode(x)[..., latents] on the main run's SAE;
        # in general equal to the GEMM's rounding)
        x, w, b = self.as_input(x), self.W_enc[:, latents], self.b_enc[latents]
        return (torch.addmm(b, x, w) if x.dim() == 2 else x @ w + b).relu()  # [..., len(latents)]

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        f = self.encode(x)                                                 # [B, n]
        x_hat = self.decode(f)                                             # [B, d]
        mse = mse_term(x_hat, x)
        l1 = (f.float() @ self.W_dec.norm(dim=1).float()).mean()           # Σᵢ fᵢ‖W_dec,i‖, batch mean (a matvec: no [B, n] product)
        loss = mse + self.cfg.l1_coefficient * sparsity_scale * l1
        n_active, fired = self._stats(f)
        return ForwardOutput(x_hat, f, loss, {"mse": mse.detach(), "l1": l1.detach()}, n_active, fired)
