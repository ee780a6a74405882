"""Bounded per-feature summaries of a stream of activations, updated batch by batch.

Memory depends on the number of features and the settings, never on the number of
tokens seen (STYLE.md: dashboards that keep every activation in RAM do not scale).

- top-k contexts: per context the feature's maximum and its position; a running
  [n, k] table merged with each batch by `torch.topk` over the concatenation. A
  candidate whose window holds the same tokens as one already kept (a document
  repeated in the corpus) keeps only the higher of the two, so a top list never
  shows one window twice.
- activation-interval samples: intervals are octaves *below each feature's final
  maximum* ([2^m, 2^(m+1)), [2^(m-1), 2^m), ... with m = floor(log2(max))) plus one
  tail interval for everything lower. Because octaves are anchored at absolute powers
  of two, a rising running maximum only shifts a feature's ring of reservoirs: the top
  octaves it gains start empty (nothing can have fallen there before, or the maximum
  would have been higher) and the octaves that fall off the bottom merge into the
  tail. Each reservoir is a priority sample (keep the r items with the highest random
  key), which is uniform within its interval and exactly mergeable, so one pass gives
  what a two-pass "find the max, then sample intervals" would, at no second forward.
- non-activating contexts: a priority sample of the contexts where it never fired.
- histogram: counts in fixed log10-spaced bins.
- token index: for each vocabulary id, the features with the highest activation on it.

Token-level activations around each kept example (its window) are copied into a
fixed [n, slots, W] float16 buffer only when the example enters a table, so windows
are never held for candidates that lose. Random keys come from a generator seeded
by (seed, batch index): a build resumed from a checkpoint equals an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

EMPTY = -1.0  # priority / value of an empty slot; real ones are >= 0


@dataclass(frozen=True)
class StreamConfig:
    top_k: int = 20  # top-activating contexts kept per feature
    n_intervals: int = 6  # octaves below the max with their own samples (+ one tail)
    per_interval: int = 4  # samples per interval
    n_negative: int = 4  # non-activating contexts per feature
    window_before: int = 16  # tokens of context shown before the example token
    window_after: int = 8  # ... and after it
    hist_log10_lo: float = -4.0  # fixed histogram range of log10(activation); values
    hist_log10_hi: float = 5.0  # outside are clipped into the end bins
    hist_per_decade: int = 8
    token_top: int = 16  # features kept per vocabulary id in the token index
    seed: int = 0

    @property
    def window(self) -> int:
        return self.window_before + 1 + self.window_after

    @property
    def n_hist_bins(self) -> int:
        return int(round((self.hist_log10_hi - self.hist_log10_lo) * self.hist_per_decade))

    def hist_edges(self) -> list[float]:
        """log10 bin edges, n_hist_bins + 1 values."""
        return [self.hist_log10_lo + i / self.hist_per_decade for i in range(self.n_hist_bins + 1)]

    def to_dict(self) -> dict:
        return asdict(self)


def _window_values(acts: torch.Tensor, b: torch.Tensor, pos: torch.Tensor, f: torch.Tensor, before: int, width: int) -> torch.Tensor:
    """acts [B, T, n]; for each (b, pos, f) the activations of feature f at positions
    pos-before .. pos-before+width-1 of context b, zero outside the context: [S, width] f16."""
    T = acts.shape[1]
    p = pos[:, None] - before + torch.arange(width)[None, :]  # [S, width]
    inside = (p >= 0) & (p < T)
    vals = acts[b[:, None], p.clamp(0, T - 1), f[:, None]]  # [S, width]
    return torch.where(inside, vals, torch.zeros(())).to(torch.float16)


def _window_hash(token_ids: torch.Tensor, pos: torch.Tensor, before: int, width: int) -> torch.Tensor:
    """token_ids [B, T], pos [B, n]: a 64-bit hash of the token ids in each window
    (positions outside the context count as -1): [B, n] int64. Wrapping int64
    arithmetic; a collision would only hide one example."""
    B, T = token_ids.shape
    p = pos[..., None] - before + torch.arange(width)  # [B, n, W]
    inside = (p >= 0) & (p < T)
    toks = torch.gather(token_ids, 1, p.clamp(0, T - 1).view(B, -1)).view(p.shape)
    toks = torch.where(inside, toks, torch.full((), -1, dtype=torch.int64))
    return ((toks + 2) * _HASH_POWERS[:width]).sum(-1)  # [B, n]


_HASH_POWERS = torch.tensor([pow(1_000_003, j, 2**63) for j in range(256)], dtype=torch.int64)


def _drop_duplicates(values: torch.Tensor, hashes: torch.Tensor) -> torch.Tensor:
    """values, hashes [n, m]: values with every entry whose hash repeats a higher
    entry of the same row set to EMPTY."""
    order = torch.argsort(values, dim=1, descending=True, stable=True)
    h = torch.gather(hashes, 1, order)
    order = torch.gather(order, 1, torch.argsort(h, dim=1, stable=True))  # by hash, highest value first in each group
    h = torch.gather(hashes, 1, order)
    dup = torch.zeros_like(h, dtype=torch.bool)
    dup[:, 1:] = h[:, 1:] == h[:, :-1]
    dup &= torch.gather(values, 1, order) > EMPTY
    out = values.clone()
    out.scatter_(1, order, torch.where(dup, torch.full((), EMPTY), torch.gather(values, 1, order)))
    return out


def _rank_in_group(groups: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order items by (group ascending, key descending); returns the order and each
    ordered item's rank within its group."""
    order = torch.argsort(keys, descending=True)
    order = order[torch.argsort(groups[order], stable=True)]
    g = groups[order]
    first = torch.searchsorted(g, g)  # index of the first item of each item's group
    return order, torch.arange(len(g)) - first


class FeatureStream:
    """Running summaries of `n` features (or neurons) over contexts of length T."""

    def __init__(self, n: int, ctx_len: int, vocab_size: int, cfg: StreamConfig = StreamConfig()):
        self.n, self.T, self.vocab, self.cfg = n, ctx_len, vocab_size, cfg
        k, Q1, r, W = cfg.top_k, cfg.n_intervals + 1, cfg.per_interval, cfg.window
        self.n_tokens = 0
        self.count = torch.zeros(n, dtype=torch.int64)  # tokens each fired on
        self.total = torch.zeros(n, dtype=torch.float64)  # sum of activations
        self.max = torch.zeros(n)  # running max activation
        self.top_octave = torch.full((n,), -(2**30), dtype=torch.int64)  # floor(log2(max)), or very low if never fired
        self.top_val = torch.full((n, k), EMPTY)  # [n, k] per-context max, descending
        self.top_id = torch.full((n, k), -1, dtype=torch.int64)  # example id = context * T + position
        self.top_win = torch.zeros(n, k, W, dtype=torch.float16)
        self.top_hash = torch.zeros(n, k, dtype=torch.int64)  # hash of each kept window's token ids
        self.res_key = torch.full((n, Q1, r), EMPTY)  # slot j < Q: octave top_octave - j; slot Q: tail
        self.res_val = torch.zeros(n, Q1, r)
        self.res_id = torch.full((n, Q1, r), -1, dtype=torch.int64)
        self.res_win = torch.zeros(n, Q1, r, W, dtype=torch.float16)
        self.neg_key = torch.full((n, cfg.n_negative), EMPTY)
        self.neg_ctx = torch.full((n, cfg.n_negative), -1, dtype=torch.int64)
        self.hist = torch.zeros(n, cfg.n_hist_bins, dtype=torch.int64)
        self.l0_hist = torch.zeros(n + 1, dtype=torch.int64)  # tokens by number of active features
        self.tok_feat = torch.full((vocab_size, cfg.token_top), -1, dtype=torch.int64)  # token index
        self.tok_val = torch.full((vocab_size, cfg.token_top), EMPTY)

    # --- checkpointing --------------------------------------------------------
    _STATE = ("count", "total", "max", "top_octave", "top_val", "top_id", "top_win", "top_hash", "res_key", "res_val", "res_id",
              "res_win", "neg_key", "neg_ctx", "hist", "l0_hist", "tok_feat", "tok_val")

    def state_dict(self) -> dict:
        return {"n_tokens": self.n_tokens, **{name: getattr(self, name) for name in self._STATE}}

    def load_state_dict(self, state: dict) -> None:
        self.n_tokens = int(state["n_tokens"])
        for name in self._STATE:
            setattr(self, name, state[name])

    # --- the update -------------------------------------------------------------
    @torch.no_grad()
    def update(self, acts: torch.Tensor, valid: torch.Tensor, ctx_ids: torch.Tensor, token_ids: torch.Tensor, batch_index: int) -> None:
        """acts [B, T, n] ≥ 0 (excluded tokens already zero), valid [B, T] bool (tokens
        that count), ctx_ids [B] int64 (context ids, unique across the stream),
        token_ids [B, T] int64."""
        B, T, n = acts.shape
        assert T == self.T and n == self.n, (acts.shape, self.T, self.n)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + batch_index)
        # every firing (token, feature) pair; the per-feature and per-token sums below
        # come from these ~L0·B·T pairs instead of dense passes over [B, T, n]
        b, t, f = torch.nonzero(acts, as_tuple=True)
        v = acts[b, t, f]
        self.n_tokens += int(valid.sum())
        self.count += torch.bincount(f, minlength=n)
        self.total.index_add_(0, f, v.to(torch.float64))
        l0 = torch.bincount(b * T + t, minlength=B * T).view(B, T)[valid]  # [n_valid]
        self.l0_hist += torch.bincount(l0, minlength=n + 1)

        cmax, cpos = acts.max(dim=1)  # [B, n] per-context max and its position
        self._update_top(acts, cmax, cpos, ctx_ids, token_ids)
        self._update_negatives(cmax, valid.any(1), ctx_ids, gen)
        if len(v) == 0:
            return
        self._update_hist(f, v)
        self._update_reservoirs(acts, b, t, f, v, ctx_ids, gen)
        self._update_token_index(token_ids[b, t], f, v)

    def _update_top(self, acts, cmax, cpos, ctx_ids, token_ids) -> None:
        k = self.cfg.top_k
        cand_val = torch.where(cmax > 0, cmax, torch.full((), EMPTY)).T  # [n, B]
        cand_id = (ctx_ids[:, None] * self.T + cpos).T  # [n, B]
        cand_hash = _window_hash(token_ids, cpos, self.cfg.window_before, self.cfg.window).T  # [n, B]
        all_val = torch.cat([self.top_val, cand_val], 1)  # [n, k + B]
        all_val = _drop_duplicates(all_val, torch.cat([self.top_hash, cand_hash], 1))
        val, idx = torch.topk(all_val, k, dim=1)  # [n, k]
        ids = torch.gather(torch.cat([self.top_id, cand_id], 1), 1, idx)
        hashes = torch.gather(torch.cat([self.top_hash, cand_hash], 1), 1, idx)
        win = torch.gather(self.top_win, 1, idx.clamp(max=k - 1)[..., None].expand(-1, -1, self.cfg.window))
        f, j = torch.nonzero((idx >= k) & (val > EMPTY), as_tuple=True)  # slots taken by this batch's contexts
        if len(f):
            b = idx[f, j] - k
            win[f, j] = _window_values(acts, b, cpos[b, f], f, self.cfg.window_before, self.cfg.window)
        ids = torch.where(val > EMPTY, ids, torch.full((), -1, dtype=torch.int64))
        self.top_val, self.top_id, self.top_win, self.top_hash = val, ids, win, hashes

    def _update_negatives(self, cmax, has_tokens, ctx_ids, gen) -> None:
        B = cmax.shape[0]
        key = torch.rand(B, generator=gen)[:, None].expand(B, self.n)  # one key per context
        key = torch.where((cmax > 0) | ~has_tokens[:, None], torch.full((), EMPTY), key).T  # [n, B]
        cand = ctx_ids[None, :].expand(self.n, B)
        self.neg_key, idx = torch.topk(torch.cat([self.neg_key, key], 1), self.cfg.n_negative, dim=1)
        ctx = torch.gather(torch.cat([self.neg_ctx, cand], 1), 1, idx)
        self.neg_ctx = torch.where(self.neg_key >= 0, ctx, torch.full((), -1, dtype=torch.int64))

    def _update_hist(self, f, v) -> None:
        cfg = self.cfg
        bins = ((torch.log10(v) - cfg.hist_log10_lo) * cfg.hist_per_decade).floor().long().clamp(0, cfg.n_hist_bins - 1)
        self.hist.view(-1).index_add_(0, f * cfg.n_hist_bins + bins, torch.ones_like(bins))

    def _shift_rings(self, new_top: torch.Tensor) -> None:
        """The max of some features rose by s octaves: their slot j moves to j + s,
        slots pushed past the last octave merge into the tail."""
        Q, r = self.cfg.n_intervals, self.cfg.per_interval
        fired_before = self.top_octave > -(2**30)
        s = new_top - self.top_octave
        F = torch.nonzero(fired_before & (s > 0)).flatten()
        self.top_octave = torch.where(new_top > self.top_octave, new_top, self.top_octave)
        if len(F) == 0:
            return
        s = s[F]
        j = torch.arange(Q)
        src = j[None, :] - s[:, None]  # [nF, Q] old slot feeding new slot j
        keep = src >= 0
        dropped = (j[None, :] + s[:, None]) >= Q  # old slots leaving the octaves
        key, val, ids, win = self.res_key[F], self.res_val[F], self.res_id[F], self.res_win[F]
        W = self.cfg.window

        def move(x, fill):
            idx = src.clamp(min=0)
            shape = idx.shape + (1,) * (x.dim() - 2)
            moved = torch.gather(x[:, :Q], 1, idx.view(shape).expand(-1, -1, *x.shape[2:]))
            mask = keep.view(shape)
            return torch.where(mask, moved, torch.full((), fill, dtype=x.dtype))

        new_key, new_val, new_id, new_win = move(key, EMPTY), move(val, 0.0), move(ids, -1), move(win, 0.0)
        # tail = best r of (old tail, dropped old slots) by key
        pool_key = torch.cat([key[:, Q], torch.where(dropped[..., None], key[:, :Q], torch.full((), EMPTY)).flatten(1)], 1)
        pool_val = torch.cat([val[:, Q], val[:, :Q].flatten(1)], 1)
        pool_id = torch.cat([ids[:, Q], ids[:, :Q].flatten(1)], 1)
        pool_win = torch.cat([win[:, Q], win[:, :Q].flatten(1, 2)], 1)
        tk, ti = torch.topk(pool_key, r, dim=1)
        tail_val = torch.gather(pool_val, 1, ti)
        tail_id = torch.gather(pool_id, 1, ti)
        tail_win = torch.gather(pool_win, 1, ti[..., None].expand(-1, -1, W))
        self.res_key[F] = torch.cat([new_key, tk[:, None]], 1)
        self.res_val[F] = torch.cat([new_val, tail_val[:, None]], 1)
        self.res_id[F] = torch.cat([new_id, tail_id[:, None]], 1)
        self.res_win[F] = torch.cat([new_win, tail_win[:, None]], 1)

    def _update_reservoirs(self, acts, b, t, f, v, ctx_ids, gen) -> None:
        cfg = self.cfg
        Q, r, W = cfg.n_intervals, cfg.per_interval, cfg.window
        self.max = torch.maximum(self.max, acts.amax((0, 1)))
        new_top = torch.where(self.max > 0, torch.floor(torch.log2(self.max.clamp(min=1e-30))).long(), self.top_octave)
        self._shift_rings(new_top)
        slot = (self.top_octave[f] - torch.floor(torch.log2(v)).long()).clamp(0, Q)  # [P]; Q = tail
        group = f * (Q + 1) + slot
        key = torch.rand(len(v), generator=gen)
        order, rank = _rank_in_group(group, key)
        sel = order[rank < r]  # this batch's best r per group: the only ones that can enter
        g_sel, rank_sel = group[sel], rank[rank < r]
        touched, g_row = torch.unique(g_sel, return_inverse=True)
        G = len(touched)
        cand_key = torch.full((G, r), EMPTY)
        cand_item = torch.full((G, r), -1, dtype=torch.int64)
        cand_key[g_row, rank_sel] = key[sel]
        cand_item[g_row, rank_sel] = sel
        flat_key = self.res_key.view(-1, r)
        flat_val = self.res_val.view(-1, r)
        flat_id = self.res_id.view(-1, r)
        flat_win = self.res_win.view(-1, r, W)
        mk, mi = torch.topk(torch.cat([flat_key[touched], cand_key], 1), r, dim=1)  # [G, r]
        old = mi < r
        oi = mi.clamp(max=r - 1)
        item = torch.gather(cand_item, 1, (mi - r).clamp(min=0))  # pair index where new
        item_c = item.clamp(min=0)
        new_val = torch.where(old, torch.gather(flat_val[touched], 1, oi), v[item_c])
        new_id = torch.where(old, torch.gather(flat_id[touched], 1, oi), ctx_ids[b[item_c]] * self.T + t[item_c])
        new_win = torch.gather(flat_win[touched], 1, oi[..., None].expand(-1, -1, W))
        gi, si = torch.nonzero(~old, as_tuple=True)
        if len(gi):
            it = item[gi, si]
            new_win[gi, si] = _window_values(acts, b[it], t[it], f[it], cfg.window_before, W)
        flat_key[touched], flat_val[touched], flat_id[touched], flat_win[touched] = mk, new_val, new_id, new_win

    def _update_token_index(self, tok, f, v) -> None:
        K, n = self.cfg.token_top, self.n
        # fold in the current entries of the touched tokens, then keep each token's best K distinct features
        touched = torch.unique(tok)
        old_f, old_v = self.tok_feat[touched], self.tok_val[touched]  # [U, K]
        live = old_f >= 0
        all_tok = torch.cat([tok, touched[:, None].expand(-1, K)[live]])
        all_f = torch.cat([f, old_f[live]])
        all_v = torch.cat([v, old_v[live]])
        pair, inverse = torch.unique(all_tok * n + all_f, return_inverse=True)
        best = torch.zeros(len(pair)).scatter_reduce_(0, inverse, all_v, reduce="amax", include_self=False)
        p_tok, p_f = pair // n, pair % n
        order, rank = _rank_in_group(p_tok, best)
        keep = order[rank < K]
        self.tok_feat[touched] = -1
        self.tok_val[touched] = EMPTY
        self.tok_feat[p_tok[keep], rank[rank < K]] = p_f[keep]
        self.tok_val[p_tok[keep], rank[rank < K]] = best[keep]

    # --- results ----------------------------------------------------------------
    def interval_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[n, Q+1] lower and upper activation bounds of each sample interval (upper
        inclusive for the top octave: it ends at the max; the tail starts at 0)."""
        Q = self.cfg.n_intervals
        j = torch.arange(Q + 1, dtype=torch.float64)
        m = self.top_octave.double()[:, None]
        lo = torch.pow(2.0, m - j)
        hi = torch.pow(2.0, m - j + 1)
        lo[:, Q] = 0.0
        hi[:, Q] = torch.pow(2.0, m[:, 0] - Q + 1)
        hi[:, 0] = torch.minimum(hi[:, 0], self.max.double())
        return lo, hi
