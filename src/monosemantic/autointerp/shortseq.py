"""Running many short token sequences (N2G's truncations and substitutions): grouped
by length so no padding or attention mask is needed, batched, BOS-like token first."""

from __future__ import annotations

import torch


def groups(seqs: list[list[int]], batch: int):
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        for j in range(0, len(idx), batch):
            chunk = idx[j : j + batch]
            yield chunk, torch.tensor([seqs[i] for i in chunk], dtype=torch.long)


@torch.no_grad()
def last_position(forward, seqs: list[list[int]], batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual [S, d], neurons [S, d_mlp]) at the last position of each sequence."""
    if not seqs:
        return torch.zeros(0), torch.zeros(0)
    resid_out: list[torch.Tensor | None] = [None] * len(seqs)
    neur_out: list[torch.Tensor | None] = [None] * len(seqs)
    for chunk, ids in groups(seqs, batch):
        resid, neurons = forward(ids)
        for k, i in enumerate(chunk):
            resid_out[i], neur_out[i] = resid[k, -1], neurons[k, -1]
    return torch.stack(resid_out), torch.stack(neur_out)


@torch.no_grad()
def alternatives(lm, seqs: list[list[int]], n: int, batch: int = 64) -> list[list[list[int]]]:
    """For each sequence and each position j >= 1: the model's n likeliest tokens at j
    (predicted from positions < j) other than the one there."""
    out: list[list[list[int]]] = [[] for _ in seqs]
    for chunk, ids in groups(seqs, batch):
        top = lm.logits(ids).float()[:, :-1].topk(n + 1, dim=-1).indices  # [B, L-1, n+1]
        for k, i in enumerate(chunk):
            out[i] = [[int(t) for t in row if int(t) != int(ids[k, j + 1])][:n] for j, row in enumerate(top[k])]
    return out
