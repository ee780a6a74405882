"""TopK SAE (Gao et al. 2024).

    pre = (x − b_dec) @ W_enc + b_enc
    f   = top-k of ReLU(pre) per token, the rest 0
    x̂   = f @ W_dec + b_dec                      # decoder rows kept at unit norm
    L   = ‖x − x̂‖² + aux_coefficient · AuxK

AuxK: the residual e = x − x̂ (a constant target) is modelled by the top-aux_k
pre-activations among latents dead so far (dead_mask from the trainer),
ê = f_aux @ W_dec; AuxK = ‖e − ê‖² / ‖e − mean(e)‖² over the batch (Gao et al.'s
normalised MSE), 0 when nothing is dead. It gives dead latents a gradient.

Init (Gao et al.): random unit decoder rows, W_enc = W_decᵀ, b_enc = 0, b_dec = the
geometric median of a data sample. Decoder norm: the gradient component parallel to
each row is removed before the step and rows are renormalised after it.

Learning rate: `LR_SCALE` x the run's lr (`param_groups`), so 2e-3 under the default
--lr 1e-3 (batchtopk and matryoshka keep 1x: they lost latents at 2x). At equal
tokens and k, 2x recovered more of a known dictionary (docs/training.md, "Recovery of a known dictionary"; d 256,
4,096 true directions, 8,192 latents, 307,200 tokens: mean max cosine 0.356 -> 0.546,
held-out dead 0.0 -> 0.2 %) and explained more of the real store
(benchmarks/store_defaults.py, 4,096 latents, k 32, 204,800 tokens: held-out FVE
0.737 -> 0.769, dead 2.3 %). 3x recovered more still but left 10.6 % of the latents
silent on the real store's held-out rows.

Training goes through sparse_topk.py (sparse backward); `encode` is plain and dense.
Saved for SAELens as "topk" (apply_b_dec_to_input = True): the same formula."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SAE, ForwardOutput, SAEConfig, mse_term
from .flops import StepFlops, sparse_step_flops
from .sparse_topk import densify, gather_encode, sparse_decode, topk_encode


class TopKSAE(SAE):
    uses = ("k", "aux_k", "aux_coefficient")
    sparsity_knob, knob_label, penalty_term = "k", "k", None
    bf16_safe = True                      # x1.38–1.45 in bfloat16 at float32's loss (train/loop.py)
    saelens_architecture = "topk"
    saelens_imports = ("topk",)
    apply_b_dec_to_input = True
    unit_norm_decoder = True
    decoder_init_norm = 1.0
    b_dec_at_median = True
    LR_SCALE = 2.0                        # x the run's lr: 3 silenced 10.6 % of latents (docstring)

    @classmethod
    def config_problem(cls, cfg: SAEConfig) -> str | None:
        if cfg.k > cfg.n_latents:
            return f"k={cfg.k} is larger than n_latents={cfg.n_latents}; lower k or widen the SAE"
        return None

    @classmethod
    def step_flops(cls, cfg: SAEConfig, batch_size: int, n_dead: int = 0) -> StepFlops:
        # batchtopk keeps k·B latents per batch, k per row on average: the same count
        return sparse_step_flops(cfg.d_in, cfg.n_latents, batch_size, cfg.k, cfg.aux_k, n_dead)

    def saelens_cfg(self) -> dict:
        return {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": self.cfg.k}, "k": self.cfg.k,
                "rescale_acts_by_decoder_norm": False}

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.parameters()), "lr_scale": self.LR_SCALE}]

    def encode(self, x: Tensor) -> Tensor:
        pre = self.pre_acts(x).relu()                                      # [..., n]
        top = pre.topk(self.cfg.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, top.indices, top.values)  # [..., n], k nonzero at most

    def _select(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> (top_acts [B, m], top_indices [B, m], pre_acts [B, n] detached)."""
        enc = topk_encode(x, self.W_enc, self.b_enc, self.b_dec, self.cfg.k)
        return enc.top_acts, enc.top_indices, enc.pre_acts

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        top_acts, top_idx, pre = self._select(x)                           # [B, m], [B, m], [B, n]
        x_hat = sparse_decode(top_acts, top_idx, self.W_dec) + self.b_dec  # [B, d]
        mse = mse_term(x_hat, x)
        aux = self._auxk(x, x_hat, pre, dead_mask)
        loss = mse + self.cfg.aux_coefficient * aux
        active = top_acts.detach() > 0                                     # [B, m]
        fired = torch.zeros(self.cfg.n_latents, dtype=torch.bool, device=x.device)
        fired[top_idx[active]] = True
        acts = lambda: densify(top_acts, top_idx, self.cfg.n_latents)     # [B, n] on demand, for metrics
        return ForwardOutput(x_hat, acts, loss, {"mse": mse.detach(), "aux": aux.detach()}, active.sum(-1), fired)

    def _auxk(self, x: Tensor, x_hat: Tensor, pre: Tensor, dead_mask: Tensor | None) -> Tensor:
        zero = x_hat.new_zeros((), dtype=torch.float32)
        if dead_mask is None or self.cfg.aux_coefficient == 0:
            return zero
        n_dead = int(dead_mask.sum())
        if n_dead == 0:
            return zero
        m = min(self.cfg.effective_aux_k, n_dead)
        with torch.no_grad():
            idx = pre.masked_fill(~dead_mask.to(pre.device), float("-inf")).topk(m, dim=-1, sorted=False).indices  # [B, m]
        vals = gather_encode(x, self.W_enc, self.b_enc, self.b_dec, idx, pre).relu()  # [B, m]
        e_hat = sparse_decode(vals, idx, self.W_dec).float()               # [B, d], no b_dec
        e = (x.float() - x_hat.float()).detach()                           # [B, d] target
        return (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum().clamp_min(1e-12)
