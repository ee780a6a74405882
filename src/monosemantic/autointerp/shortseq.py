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


# --- the fast path: shared prefixes computed once (a KV cache) --------------------------
def new_cache(lm):
    from transformers import DynamicCache

    return DynamicCache(config=lm.model.config)


def cache_rows(lm, cache, rows: torch.Tensor, length: int):
    """A new KV cache holding the first `length` positions of batch rows `rows` of
    `cache` (rows may repeat: several continuations of one prefix). The original is left
    as it is, so one prefix serves any number of continuations."""
    from transformers import DynamicCache

    data = [(layer.keys[rows, :, :length], layer.values[rows, :, :length]) if layer.is_initialized else (None, None)
            for layer in cache.layers]
    return DynamicCache(ddp_cache_data=data, config=lm.model.config)


@torch.no_grad()
def substituted(forward, lm, seqs: list[list[int]], n: int, batch: int = 64):
    """alternatives(lm, seqs, n) and, for each sequence i, each position 1 <= q < len-1 and
    each of its n alternatives a (in that order), the residual and neurons at the last
    position of seqs[i] with q replaced by a: ([S, d], [S, d_mlp]).

    The same numbers as last_position on the substituted sequences (to float rounding),
    but the tokens before q are not run again: their keys and values come from the one
    forward that finds the alternatives, so a 4-token context (5 positions with the
    BOS-like token) costs 2 x (4 + 3 + 2) positions instead of 2 x 3 x 5."""
    alts: list[list[list[int]]] = [[] for _ in seqs]
    got: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}
    for chunk, ids in groups(seqs, batch):
        B, L = ids.shape
        cache = new_cache(lm)
        top = lm.logits(ids, cache=cache).float()[:, :-1].topk(n + 1, dim=-1).indices  # [B, L-1, n+1]
        for k, i in enumerate(chunk):
            alts[i] = [[int(t) for t in row if int(t) != int(ids[k, j + 1])][:n] for j, row in enumerate(top[k])]
        rows = torch.arange(B).repeat_interleave(n)  # [B*n]: row k's n alternatives side by side
        for q in range(1, L - 1):
            suffix = ids[rows, q:].clone()  # [B*n, L-q]
            suffix[:, 0] = torch.tensor([alts[i][q - 1][a] for i in chunk for a in range(n)])
            resid, neurons = forward(suffix, cache=cache_rows(lm, cache, rows, q))
            for r in range(len(rows)):
                got[(chunk[r // n], q - 1, r % n)] = resid[r, -1], neurons[r, -1]
    keys = [(i, pos, a) for i, s in enumerate(seqs) for pos in range(len(s) - 2) for a in range(n)]
    if not keys:
        return alts, torch.zeros(0), torch.zeros(0)
    return alts, torch.stack([got[k][0] for k in keys]), torch.stack([got[k][1] for k in keys])
