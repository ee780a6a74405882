"""The three collectives of feature sharding, as autograd functions and a selection.

Every rank holds the same batch x and computes the same (replicated) loss from the
same x̂, so:
- `reduce_partials`: x̂ = Σ_ranks (its latents' share of f @ W_dec). Forward is an
  all-reduce; backward is the identity, because each rank's partial enters the
  replicated loss once and dL/dx̂ is already the same on every rank (Megatron's
  "reduce from the model-parallel region").
- `shared_input`: a replicated tensor (b_dec at the encoder's input) used by each
  rank's slice of the encoder. Forward is the identity; backward sums the ranks'
  gradient shares (Megatron's "copy to the model-parallel region").
- `global_topk_mask`: which of this rank's candidates are among the k largest over
  all ranks: local top-k, all-gather of the candidates' values, the global top-k.
Each runs over `world`'s process group: all ranks, or one feature group of the
data x feature mesh (a `World` over one of mesh.py's groups)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ..distributed import World


class _ReducePartials(torch.autograd.Function):
    @staticmethod
    def forward(ctx, partial: Tensor, group) -> Tensor:
        total = partial.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


class _SharedInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        total = grad.clone()
        dist.all_reduce(total, group=ctx.group)
        return total, None


def _group(world: World):
    return getattr(world, "group", None)  # None: the default group (all ranks)


def reduce_partials(world: World, partial: Tensor) -> Tensor:
    return _ReducePartials.apply(partial, _group(world)) if world.distributed else partial


def shared_input(world: World, x: Tensor) -> Tensor:
    return _SharedInput.apply(x, _group(world)) if world.distributed else x


@torch.no_grad()
def global_topk_mask(world: World, values: Tensor, k: int, width: int) -> tuple[Tensor, Tensor]:
    """values [B, m]: this rank's candidates (m ≤ width, -inf = no candidate); k: how
    many to keep over all ranks along dim 1 (k = -1 with B = 1 for BatchTopK's flat
    selection is the caller's reshape). -> (keep [B, m] bool, the k selected values
    [B, k], the same on every rank)."""
    B, m = values.shape
    padded = F.pad(values.float(), (0, width - m), value=float("-inf"))          # [B, width]
    every = torch.cat(world.all_gather(padded), dim=1)                          # [B, ranks·width]
    top = every.topk(k, dim=1, sorted=False)                                    # [B, k]
    chosen = torch.zeros_like(every, dtype=torch.bool).scatter_(1, top.indices, True)
    start = world.rank * width
    return chosen[:, start : start + m], top.values
