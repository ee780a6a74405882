"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead").

    pre = x @ W_enc + b_enc                  # no b_dec subtracted, as in the paper
    f   = pre · H(pre − θ),  θ = exp(log_threshold) > 0 per latent
    x̂   = f @ W_dec + b_dec
    L   = ‖x − x̂‖² + λ₀ · Σᵢ H(preᵢ − θᵢ)    # batch mean; λ₀ = l0_coefficient

H has no useful gradient, so θ learns through straight-through pseudo-derivatives
with a rectangle kernel K(u) = 1[|u| < ½] of width ε (jumprelu_bandwidth):
    ∂f/∂θ  = −(θ/ε) K((pre − θ)/ε)           ∂H/∂θ = −(1/ε) K((pre − θ)/ε)
and pre gets the ordinary gradient H(pre − θ) through f (none through the L0 term).

Init: random unit decoder rows, W_enc = W_decᵀ, b_enc = b_dec = 0 as the paper. The
paper's θ = ε = 0.001 assume inputs with E‖x‖² = 1 and ~10⁵ steps: θ lives in log space,
where Adam moves it by about lr per step, so from 0.001 it cannot reach a useful
threshold in a run of a few thousand steps on inputs of any other scale (measured: the
main job's store, E‖x‖ = √d, stayed at L0 ≈ 820 of 4,096 with the L0 penalty on). So by
default both come from the first batch: θᵢ = std(preᵢ) (a latent starts firing on a
sixth or so of tokens; the L0 penalty and the reconstruction then move it, log θ at
10x the scheduled lr) and ε = 0.1·median std(pre). jumprelu_init_threshold /
jumprelu_bandwidth set them instead.
Decoder rows are kept at unit norm (parallel gradient removed, renormalised after the
step): the L0 penalty does not see decoder norms, and a fixed norm keeps θ meaningful.
Saved for SAELens as "jumprelu" (apply_b_dec_to_input = False, tensor `threshold` = θ)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from .base import SAE, ForwardOutput, mse_term


def _rectangle(u: Tensor) -> Tensor:
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad * (pre > theta)
        grad_theta = -(theta / eps) * _rectangle((pre - theta) / eps) * grad
        return grad_pre, grad_theta.sum_to_size(theta.shape).to(theta.dtype), None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = -(1.0 / eps) * _rectangle((pre - theta) / eps) * grad
        return None, grad_theta.sum_to_size(theta.shape).to(theta.dtype), None


class JumpReLUSAE(SAE):
    uses = ("l0_coefficient", "jumprelu_bandwidth", "jumprelu_init_threshold", "jumprelu_preact_coefficient")
    sparsity_knob, knob_label, penalty_term = "l0_coefficient", "l0_", "l0"
    bf16_safe = False                     # its thresholds were never measured in bfloat16
    saelens_architecture = "jumprelu"
    saelens_imports = ("jumprelu",)
    apply_b_dec_to_input = False
    unit_norm_decoder = True
    decoder_init_norm = 1.0

    INIT_THRESHOLD_STDS = 1.0    # θ₀ in units of each latent's pre-activation std
    THRESHOLD_LR_SCALE = 10.0    # log θ's lr over the scheduled one

    def __init__(self, cfg):
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.full((cfg.n_latents,), math.log(cfg.jumprelu_init_threshold or 1e-3)))  # [n]
        self.register_buffer("bandwidth", torch.tensor(float(cfg.jumprelu_bandwidth or 1e-3)))  # ε; in checkpoints

    def param_groups(self) -> list[dict]:
        rest = [p for name, p in self.named_parameters() if name != "log_threshold"]
        return [{"params": rest, "lr_scale": 1.0}, {"params": [self.log_threshold], "lr_scale": self.THRESHOLD_LR_SCALE}]

    @torch.no_grad()
    def init_from_data(self, sample: Tensor, all_latents=None) -> None:
        """`all_latents` maps a per-latent vector of this SAE to the whole dictionary's
        (a feature-sharded SAE is a slice of it, train/sharded.py): ε is a statistic over
        every latent."""
        std = self.pre_acts(sample.to(self.W_enc.dtype)).std(0).clamp_min(1e-6)  # [n]
        if self.cfg.jumprelu_init_threshold is None:
            self.log_threshold.copy_((self.INIT_THRESHOLD_STDS * std).log())
        if self.cfg.jumprelu_bandwidth is None:
            every = std if all_latents is None else all_latents(std)            # [n_latents]
            self.bandwidth.fill_(0.1 * float(every.median()))

    @property
    def threshold(self) -> Tensor:
        return self.log_threshold.exp()                                    # [n], > 0

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"threshold": self.threshold.float()}                       # compares pre-activations: unit-free

    @classmethod
    def extra_tensor_shapes(cls, cfg) -> dict[str, tuple[int, ...]]:
        return {"threshold": (cfg.n_latents,)}

    @torch.no_grad()
    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        if not bool((tensors["threshold"] > 0).all()):
            raise ValueError("jumprelu threshold has values <= 0")
        self.log_threshold.copy_(tensors["threshold"].log())

    def encode(self, x: Tensor) -> Tensor:
        pre = self.pre_acts(x)                                             # [..., n]
        return pre * (pre > self.threshold)

    def activate(self, pre: Tensor) -> Tensor:
        """[B, n] pre-activations -> f ≥ 0, with θ's straight-through gradient."""
        return _JumpReLU.apply(pre, self.threshold.to(pre.dtype), float(self.bandwidth))

    def penalty_terms(self, pre: Tensor, f: Tensor) -> dict[str, Tensor]:
        """The sparsity terms, each a sum over this SAE's latents (a mean over rows):
        a dictionary split by latents has the sum of its slices' terms (train/sharded.py)."""
        theta, eps = self.threshold.to(pre.dtype), float(self.bandwidth)
        terms = {"l0": _Step.apply(pre, theta, eps).float().sum(-1).mean()}
        if self.cfg.jumprelu_preact_coefficient:
            # the only gradient a latent below its threshold everywhere still gets
            terms["preact"] = (theta - pre).relu().float().sum(-1).mean()
        return terms

    def penalty(self, terms: dict[str, Tensor], sparsity_scale: float) -> Tensor:
        """What `penalty_terms` (of the whole dictionary) add to the MSE."""
        loss = self.cfg.l0_coefficient * sparsity_scale * terms["l0"]
        if "preact" in terms:
            loss = loss + self.cfg.jumprelu_preact_coefficient * terms["preact"]
        return loss

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        pre = self.pre_acts(x)                                             # [B, n]
        f = self.activate(pre)                                             # [B, n], ≥ 0
        x_hat = self.decode(f)                                             # [B, d]
        mse = mse_term(x_hat, x)
        terms = self.penalty_terms(pre, f)
        loss = mse + self.penalty(terms, sparsity_scale)
        n_active, fired = self._stats(f)
        return ForwardOutput(x_hat, f, loss, {"mse": mse.detach(), **{k: v.detach() for k, v in terms.items()}}, n_active, fired)
