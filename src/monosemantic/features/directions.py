"""What a feature's decoder direction does: its logit effects through the final norm
and the unembedding, and its nearest neighbours by decoder cosine. Pure functions on
tensors, chunked so that [n, vocab] is never materialised."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class TopBottom(NamedTuple):
    top_ids: torch.Tensor  # [n, k] int64
    top_vals: torch.Tensor  # [n, k]
    bottom_ids: torch.Tensor  # [n, k] (most negative first)
    bottom_vals: torch.Tensor


def norm_gain(final_norm: nn.Module) -> tuple[torch.Tensor | None, bool]:
    """The elementwise gain a direction picks up in the final norm, and whether the
    norm centres its input (LayerNorm) first. RMSNorm: weight; Gemma's RMSNorm
    computes x * (1 + weight), so its gain is 1 + weight."""
    weight = getattr(final_norm, "weight", None)
    if weight is None:
        return None, False
    gain = weight.detach().float()
    if "gemma" in type(final_norm).__name__.lower():
        gain = 1.0 + gain
    return gain, isinstance(final_norm, nn.LayerNorm)


def through_final_norm(directions: torch.Tensor, final_norm: nn.Module) -> torch.Tensor:
    """directions [n, d] as the unembedding sees them (ignoring the norm's data-dependent
    scale, the same for every token, and any bias, the same for every feature)."""
    gain, centres = norm_gain(final_norm)
    out = directions.float()
    if centres:
        out = out - out.mean(-1, keepdim=True)
    return out * gain if gain is not None else out


@torch.no_grad()
def logit_effects(directions: torch.Tensor, final_norm: nn.Module, unembed: torch.Tensor, k: int = 10, chunk: int = 256) -> TopBottom:
    """Tokens most promoted and most suppressed by each direction [n, d]; unembed [vocab, d]."""
    W_U = unembed.detach().float().T  # [d, vocab]
    parts = []
    for i in range(0, directions.shape[0], chunk):
        logits = through_final_norm(directions[i : i + chunk], final_norm) @ W_U  # [c, vocab]
        top = torch.topk(logits, k, dim=1)
        bottom = torch.topk(logits, k, dim=1, largest=False)
        parts.append((top.indices, top.values, bottom.indices, bottom.values))
    return TopBottom(*(torch.cat(p) for p in zip(*parts)))


def unit_rows(directions: torch.Tensor) -> torch.Tensor:
    """Each row scaled to norm 1 (a zero row stays zero), float32."""
    d = directions.float()
    return d / d.norm(dim=1, keepdim=True).clamp(min=1e-12)


@torch.no_grad()
def nearest_directions(queries: torch.Tensor, keys: torch.Tensor, k: int = 10, chunk: int = 1024,
                       exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the k key rows of highest cosine: ids [n, k], cosines [n, k].
    With `exclude_self` queries and keys are the same rows and a row is not its own neighbour."""
    q, keys = unit_rows(queries), unit_rows(keys)  # [n, d], [m, d]
    k = min(k, keys.shape[0] - (1 if exclude_self else 0))
    ids, cos = [], []
    for i in range(0, q.shape[0], chunk):
        sim = q[i : i + chunk] @ keys.T  # [c, m]
        if exclude_self:
            sim[torch.arange(sim.shape[0]), torch.arange(i, i + sim.shape[0])] = -2.0
        top = torch.topk(sim, k, dim=1)
        ids.append(top.indices)
        cos.append(top.values)
    return torch.cat(ids), torch.cat(cos)


def decoder_neighbours(directions: torch.Tensor, k: int = 10, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest other directions by cosine: ids [n, k], cosines [n, k]."""
    return nearest_directions(directions, directions, k, chunk, exclude_self=True)
