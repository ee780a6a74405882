"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead").

    pre = x @ W_enc + b_enc                  # no b_dec subtracted, as in the paper
    f   = pre · H(pre − θ),  θ = exp(log_threshold) > 0 per latent
    x̂   = f @ W_dec + b_dec
    L   = ‖x − x̂‖² + λ₀ · Σᵢ H(preᵢ − θᵢ)    # batch mean; λ₀ = l0_coefficient

H has no useful gradient, so θ learns through straight-through pseudo-derivatives
with a rectangle kernel K(u) = 1[|u| < ½] of width ε (jumprelu_bandwidth):
    ∂f/∂θ  = −(θ/ε) K((pre − θ)/ε)           ∂H/∂θ = −(1/ε) K((pre − θ)/ε)
and pre gets the ordinary gradient H(pre − θ) through f (none through the L0 term).

Init: random unit decoder rows, W_enc = W_decᵀ. The paper's θ = ε = 0.001 assume
inputs with E‖x‖² = 1 and ~10⁵ steps: θ lives in log space, where Adam moves it by
about lr per step, so from 0.001 it cannot reach a useful threshold in a run of a few
thousand steps on inputs of any other scale (measured: the main job's store, E‖x‖ = √d,
stayed at L0 ≈ 820 of 4,096 with the L0 penalty on). So by default both come from the
first batch: b_dec at its geometric median and b_enc = −median·W_enc (centred init:
every latent's pre-activation starts centred, so none starts below its threshold on
almost every token), θᵢ = std(preᵢ) (each latent starts firing on a sixth or so of
tokens) and ε = 0.1·median std(pre); jumprelu_init_threshold / jumprelu_bandwidth
set them instead. log θ learns at 3x the scheduled lr (jumprelu_threshold_lr_scale):
at 10x, the old default, a threshold the L0 penalty pushes up outruns its latent's
pre-activations and the latent never fires again; at 1x λ₀ hardly moves L0 in a short
run (22.6 % of 4,096 silent on held-out
tokens at the main job's length; docs/training.md, "JumpReLU's dead latents").
The pre-activation loss (jumprelu_preact_coefficient, optionally on dead latents only)
is there, off by default.
Decoder rows are kept at unit norm (parallel gradient removed, renormalised after the
step): the L0 penalty does not see decoder norms, and a fixed norm keeps θ meaningful.
Saved for SAELens as "jumprelu" (apply_b_dec_to_input = False, tensor `threshold` = θ)."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch import Tensor

from .base import SAE, ForwardOutput, SAEConfig, geometric_median, mse_term, option


def _flag_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"takes true or false, got {text!r}")


@dataclass
class JumpReLUConfig(SAEConfig):
    jumprelu_threshold_lr_scale: float = option(3.0, "log θ's learning rate over the scheduled one")
    jumprelu_bandwidth_stds: float = option(0.1, "ε in units of the median pre-activation std of the first batch (when --jumprelu-bandwidth is not given)")
    jumprelu_init_threshold_stds: float = option(1.0, "θ₀ in units of each latent's pre-activation std (when --jumprelu-init-threshold is not given)")
    jumprelu_centre_init: bool = option(True, "start b_dec at the data's geometric median and b_enc at −median·W_enc", parse=_flag_bool)
    jumprelu_preact_dead_only: bool = option(False, "apply the pre-activation loss to dead latents only", parse=_flag_bool)


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
    config_class = JumpReLUConfig
    uses = ("l0_coefficient", "jumprelu_bandwidth", "jumprelu_init_threshold", "jumprelu_preact_coefficient",
            "jumprelu_threshold_lr_scale", "jumprelu_bandwidth_stds", "jumprelu_init_threshold_stds",
            "jumprelu_centre_init", "jumprelu_preact_dead_only")
    sparsity_knob, knob_label, penalty_term = "l0_coefficient", "l0_", "l0"
    bf16_safe = False                     # its thresholds were never measured in bfloat16
    saelens_architecture = "jumprelu"
    saelens_imports = ("jumprelu",)
    apply_b_dec_to_input = False
    unit_norm_decoder = True
    decoder_init_norm = 1.0

    @classmethod
    def config_problem(cls, cfg) -> str | None:
        for name in ("jumprelu_threshold_lr_scale", "jumprelu_bandwidth_stds", "jumprelu_init_threshold_stds"):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                return f"{name} must be a finite number > 0, got {v!r}"
        for name in ("jumprelu_centre_init", "jumprelu_preact_dead_only"):
            if not isinstance(getattr(cfg, name), bool):
                return f"{name} must be true or false, got {getattr(cfg, name)!r}"
        return None

    def __init__(self, cfg):
        if not isinstance(cfg, JumpReLUConfig):              # a plain SAEConfig: this class's defaults for the rest
            cfg = JumpReLUConfig(**asdict(cfg))
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.full((cfg.n_latents,), math.log(cfg.jumprelu_init_threshold or 1e-3)))  # [n]
        self.register_buffer("bandwidth", torch.tensor(float(cfg.jumprelu_bandwidth or 1e-3)))  # ε; in checkpoints

    def param_groups(self) -> list[dict]:
        rest = [p for name, p in self.named_parameters() if name != "log_threshold"]
        return [{"params": rest, "lr_scale": 1.0}, {"params": [self.log_threshold], "lr_scale": self.cfg.jumprelu_threshold_lr_scale}]

    @torch.no_grad()
    def init_from_data(self, sample: Tensor, all_latents=None) -> None:
        """`all_latents` maps a per-latent vector of this SAE to the whole dictionary's
        (a feature-sharded SAE is a slice of it, train/sharded.py): ε is a statistic over
        every latent."""
        if self.cfg.jumprelu_centre_init:
            median = geometric_median(sample.to(self.b_dec.device)).to(self.b_dec.dtype)  # [d]
            self.b_dec.copy_(median)
            self.b_enc.copy_(-(median @ self.W_enc))
        std = self.pre_acts(sample.to(self.W_enc.dtype)).std(0).clamp_min(1e-6)  # [n]
        if self.cfg.jumprelu_init_threshold is None:
            self.log_threshold.copy_((self.cfg.jumprelu_init_threshold_stds * std).log())
        if self.cfg.jumprelu_bandwidth is None:
            every = std if all_latents is None else all_latents(std)            # [n_latents]
            self.bandwidth.fill_(self.cfg.jumprelu_bandwidth_stds * float(every.median()))

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

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        pre = self.pre_acts(x)                                             # [B, n]
        f = self.activate(pre)                                             # [B, n], ≥ 0
        x_hat = self.decode(f)                                             # [B, d]
        mse = mse_term(x_hat, x)
        terms = self.penalty_terms(pre, dead_mask)
        loss = mse + self.penalty(terms, sparsity_scale)
        n_active, fired = self._stats(f)
        return ForwardOutput(x_hat, f, loss, {"mse": mse.detach(), **{k: v.detach() for k, v in terms.items()}}, n_active, fired)

    def activate(self, pre: Tensor) -> Tensor:
        """[B, n] pre-activations -> f ≥ 0, with θ's straight-through gradient."""
        return _JumpReLU.apply(pre, self.threshold.to(pre.dtype), float(self.bandwidth))

    def penalty_terms(self, pre: Tensor, dead_mask: Tensor | None = None) -> dict[str, Tensor]:
        """The terms beside the MSE, each a sum over this SAE's latents (a batch mean):
        a dictionary split by latents has the sum of its slices' terms (train/sharded.py)."""
        theta, eps = self.threshold.to(pre.dtype), float(self.bandwidth)
        terms = {"l0": self.l0_term(pre, theta, eps)}
        if self.cfg.jumprelu_preact_coefficient:
            terms["preact"] = self.preact_term(pre, theta, dead_mask)
        return terms

    def penalty(self, terms: dict[str, Tensor], sparsity_scale: float) -> Tensor:
        """What `penalty_terms` (of the whole dictionary) add to the MSE."""
        loss = self.cfg.l0_coefficient * sparsity_scale * terms["l0"]
        if "preact" in terms:
            loss = loss + self.cfg.jumprelu_preact_coefficient * terms["preact"]
        return loss

    # --- the loss terms, one method each (a feature-sharded trainer sums them per shard)
    @staticmethod
    def l0_term(pre: Tensor, theta: Tensor, eps: float) -> Tensor:
        """Σᵢ H(preᵢ − θᵢ), batch mean; θ gets the straight-through gradient."""
        return _Step.apply(pre, theta, eps).float().sum(-1).mean()

    def preact_term(self, pre: Tensor, theta: Tensor, dead_mask: Tensor | None) -> Tensor:
        """Σᵢ ReLU(θᵢ − preᵢ), batch mean (Anthropic, January 2025): the only gradient a
        latent below its threshold everywhere still gets. With jumprelu_preact_dead_only,
        over the latents `dead_mask` flags only (none without a mask)."""
        gap = (theta - pre).relu().float()                                 # [B, n], ≥ 0
        if self.cfg.jumprelu_preact_dead_only:
            gap = gap * (dead_mask.to(gap.dtype) if dead_mask is not None else 0.0)
        return gap.sum(-1).mean()
