"""Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024).

BatchTopK's encoder and selection (batchtopk.py), trained so that every prefix of
the dictionary is itself a good SAE: with nested widths w₁ < w₂ < … < w_G = n,

    x̂_g = b_dec + Σ_{i < w_g} fᵢ · W_dec,i               # the first w_g latents only
    L   = Σ_g ‖x − x̂_g‖² + aux_coefficient · AuxK        # summed over prefixes, as the paper

so the first latents must explain the most they can on their own: general,
frequent features come first and are not absorbed into their specialisations
(less absorption and splitting: SAEBench's disentanglement metrics). AuxK is
BatchTopK's, on the full reconstruction (SAELens's default).

Prefix widths: `matryoshka_widths` (the last one is n_latents, added if missing);
default n/64, n/16, n/4, n (four levels, each a quarter of the next).

Speed: the G partial decodes P_g = Σ_{w_{g-1} ≤ i < w_g} fᵢ W_dec,i come from ONE
ragged sparse decode over (row, group) bags, so the decoder's cost is BatchTopK's
plus a [B, G, d] cumulative sum, not G decodes (benchmarks/train_throughput.py
--compare matryoshka: x1.23 batchtopk's step time at 16,384 latents).

Saved for SAELens as it saves its own trained `matryoshka_batchtopk` SAEs: a
"jumprelu" SAE with threshold θ for every latent (inference needs no prefixes)."""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import ForwardOutput, SAEConfig, mse_term, option
from .batchtopk import BatchTopKSAE
from .sparse_topk import densify


def _width_list(text: str) -> list[int]:
    """--matryoshka-widths 256,1024,4096 -> [256, 1024, 4096] (argparse prints the error)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated prefix sizes, e.g. 256,1024,4096; got {text!r}") from None


@dataclass
class MatryoshkaConfig(SAEConfig):
    matryoshka_widths: list[int] | None = option(
        None, "nested prefix sizes, comma-separated; n_latents is added as the last (default n/64,n/16,n/4,n)", parse=_width_list)


def default_widths(n: int) -> list[int]:
    return sorted({max(1, n // 64), max(1, n // 16), max(1, n // 4), n})


def width_problem(widths: list[int] | None, n: int) -> str | None:
    w = list(widths) if widths else default_widths(n)
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in w) or any(a >= b for a, b in zip(w, w[1:])) or w[-1] > n:
        return f"matryoshka_widths must be strictly increasing positive integers up to n_latents={n}, got {widths!r}"
    return None


def resolve_widths(widths: list[int] | None, n: int) -> list[int]:
    problem = width_problem(widths, n)
    if problem:
        raise ConfigError(f"SAE config: {problem}")
    w = list(widths) if widths else default_widths(n)
    return w if w[-1] == n else [*w, n]


class _BagDecode(torch.autograd.Function):
    """out[bag] = Σ_{e in bag} acts[e] · W_dec[idx[e]]  (entries sorted by (bag, idx)).

    Forward is one ragged embedding_bag; backward never forms a [B, n] tensor: the
    activation gradient is a sampled product at the E entries (CSR pattern =
    the bags), the W_dec gradient a sparse [n, bags] x [bags, d] product."""

    @staticmethod
    def forward(ctx, acts: Tensor, idx: Tensor, offsets: Tensor, bag: Tensor, n_bags: int, W_dec: Tensor) -> Tensor:
        a = acts.to(W_dec.dtype)
        ctx.save_for_backward(a, idx, offsets, bag, W_dec)
        ctx.acts_dtype, ctx.n_bags = acts.dtype, n_bags
        out = F.embedding_bag(idx, W_dec, offsets[:-1], per_sample_weights=a, mode="sum", include_last_offset=False)
        return out                                                          # [n_bags, d]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        a, idx, offsets, bag, W_dec = ctx.saved_tensors
        g = grad_out.to(W_dec.dtype)                                        # [n_bags, d]
        grad_acts = grad_W = None
        if ctx.needs_input_grad[0]:
            with warnings.catch_warnings():  # torch labels sparse CSR "beta"; we only sample at a fixed pattern
                warnings.simplefilter("ignore")
                pattern = torch.sparse_csr_tensor(offsets, idx, torch.zeros_like(a), (ctx.n_bags, W_dec.shape[0]), check_invariants=False)
            try:
                grad_acts = torch.sparse.sampled_addmm(pattern, g, W_dec.t(), beta=0.0).values()
            except (RuntimeError, NotImplementedError):   # a backend/dtype without SDDMM
                grad_acts = (g[bag] * W_dec[idx]).sum(-1)
            grad_acts = grad_acts.to(ctx.acts_dtype)
        if ctx.needs_input_grad[5]:
            S = torch.sparse_coo_tensor(torch.stack([idx, bag]), a, (W_dec.shape[0], ctx.n_bags), check_invariants=False)
            grad_W = torch.sparse.mm(S, g)                                  # [n, d]
        return grad_acts, None, None, None, None, grad_W


def prefix_decode(vals: Tensor, idx: Tensor, W_dec: Tensor, widths: list[int], *, dense: bool = False) -> Tensor:
    """[B, m] activations at [B, m] latent ids -> [B, G, d] partial decodes, P[:, g] from
    latents in [w_{g-1}, w_g) (no b_dec). `dense=True` is the plain reference."""
    B, G, n = vals.shape[0], len(widths), W_dec.shape[0]
    bounds = torch.tensor(widths, device=idx.device)
    group = torch.bucketize(idx, bounds, right=True)                        # [B, m] in 0..G-1
    if dense:
        acts = torch.zeros(B, n, dtype=vals.dtype, device=vals.device).scatter_add(1, idx, vals)   # [B, n]
        start = [0] + widths[:-1]
        return torch.stack([acts[:, s:e] @ W_dec[s:e] for s, e in zip(start, widths)], dim=1)
    rows = torch.arange(B, device=idx.device)[:, None].expand_as(idx)
    live = vals.detach() != 0                                               # padding and ReLU zeros add nothing
    e_vals, e_idx = vals[live], idx[live]
    e_bag = rows[live] * G + group[live]                                   # [E]
    order = torch.argsort(e_bag * n + e_idx)                               # by bag, then latent (CSR order)
    e_vals, e_idx, e_bag = e_vals[order], e_idx[order], e_bag[order]
    counts = torch.bincount(e_bag, minlength=B * G)
    offsets = torch.zeros(B * G + 1, dtype=torch.long, device=idx.device)
    offsets[1:] = torch.cumsum(counts, 0)
    out = _BagDecode.apply(e_vals, e_idx, offsets, e_bag, B * G, W_dec)    # [B*G, d]
    return out.view(B, G, -1)


class MatryoshkaSAE(BatchTopKSAE):
    config_class = MatryoshkaConfig
    uses = (*BatchTopKSAE.uses, "matryoshka_widths")
    bf16_safe = True        # bfloat16 at float32's loss, FVE and L0 (tests/train/test_matryoshka_bf16.py; docs/training.md)
    knobs = (*BatchTopKSAE.knobs, "widths")   # the resolved prefix widths (default_widths may change)

    @classmethod
    def config_problem(cls, cfg) -> str | None:
        return super().config_problem(cfg) or width_problem(cfg.matryoshka_widths, cfg.n_latents)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.widths = resolve_widths(cfg.matryoshka_widths, cfg.n_latents)

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        vals, idx, pre = self._select(x)                                    # [B, m], [B, m], [B, n]
        partial = prefix_decode(vals, idx, self.W_dec, self.widths)         # [B, G, d]
        x_hats = partial.cumsum(1) + self.b_dec                             # [B, G, d]: x̂ of each prefix
        x_hat = x_hats[:, -1]                                               # [B, d] the whole dictionary
        prefix_mse = [mse_term(x_hats[:, g], x) for g in range(len(self.widths))]
        aux = self._auxk(x, x_hat, pre, dead_mask)
        loss = torch.stack(prefix_mse).sum() + self.cfg.aux_coefficient * aux
        active = vals.detach() > 0                                          # [B, m]
        fired = torch.zeros(self.cfg.n_latents, dtype=torch.bool, device=x.device)
        fired[idx[active]] = True
        acts = lambda: densify(vals, idx, self.cfg.n_latents)              # [B, n] on demand, for metrics
        terms = {"mse": prefix_mse[-1].detach(), "aux": aux.detach(),
                 **{f"mse_prefix_{w}": t.detach() for w, t in zip(self.widths[:-1], prefix_mse[:-1])}}
        return ForwardOutput(x_hat, acts, loss, terms, active.sum(-1), fired)
