"""The streaming summaries against brute force over the whole activation tensor."""

from __future__ import annotations

import math

import numpy as np
import torch

from monosemantic.features.streaming import FeatureStream, StreamConfig

N_CTX, T, N, VOCAB = 24, 20, 12, 50
CFG = StreamConfig(top_k=5, n_intervals=3, per_interval=3, n_negative=2, window_before=3, window_after=2, token_top=3)


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    # log-normal magnitudes over several octaves, ~20% firing, some features rarer
    acts = torch.exp(2 * torch.randn(N_CTX, T, N, generator=g)) * (torch.rand(N_CTX, T, N, generator=g) < torch.linspace(0.02, 0.4, N))
    acts[:, 0] = 0
    valid = torch.ones(N_CTX, T, dtype=torch.bool)
    valid[:, 0] = False
    tokens = torch.randint(0, VOCAB, (N_CTX, T), generator=g)
    return acts, valid, tokens


def _stream(acts, valid, tokens, batches=range(0, N_CTX, 5), stream=None):
    stream = stream or FeatureStream(N, T, VOCAB, CFG)
    for i, lo in enumerate(range(0, N_CTX, 5)):
        if lo in batches:
            hi = min(lo + 5, N_CTX)
            stream.update(acts[lo:hi], valid[lo:hi], torch.arange(lo, hi), tokens[lo:hi], i)
    return stream


def test_top_k_equals_brute_force():
    acts, valid, tokens = _data()
    s = _stream(acts, valid, tokens)
    cmax, cpos = acts.max(1)  # [ctx, n]
    for f in range(N):
        order = torch.argsort(cmax[:, f], descending=True)[: CFG.top_k]
        order = order[cmax[order, f] > 0]
        got = s.top_val[f][s.top_val[f] > 0]
        assert torch.allclose(got, cmax[order, f])
        assert (s.top_id[f, : len(order)] == order * T + cpos[order, f]).all()
        for j, c in enumerate(order.tolist()):  # windows are the activations around the max
            p = int(cpos[c, f])
            want = [float(acts[c, q, f]) if 0 <= q < T else 0.0 for q in range(p - 3, p + 3)]
            assert np.allclose(s.top_win[f, j].float().numpy(), np.float16(want), rtol=1e-3)


def test_counts_max_and_histogram():
    acts, valid, tokens = _data()
    s = _stream(acts, valid, tokens)
    assert s.n_tokens == int(valid.sum())
    assert (s.count == (acts > 0).sum((0, 1))).all()
    assert torch.allclose(s.max, acts.amax((0, 1)))
    assert int(s.hist.sum()) == int((acts > 0).sum())
    v = acts[acts > 0]
    edges = torch.tensor(CFG.hist_edges())
    inside = (torch.log10(v) >= edges[0]) & (torch.log10(v) < edges[-1])
    assert int(s.hist.sum(0)[1:-1].sum()) <= int(inside.sum())
    assert (s.l0_hist.sum() == valid.sum()) and int((s.l0_hist * torch.arange(N + 1)).sum()) == int((acts > 0).sum())


def test_interval_samples_fall_in_their_intervals_and_fill_them():
    acts, valid, tokens = _data()
    s = _stream(acts, valid, tokens)
    lo, hi = s.interval_bounds()
    Q, r = CFG.n_intervals, CFG.per_interval
    for f in range(N):
        values = acts[..., f][acts[..., f] > 0].double()
        m = math.floor(math.log2(float(s.max[f])))
        assert float(lo[f, 0]) == 2.0**m and float(hi[f, 0]) == float(s.max[f])
        for q in range(Q + 1):
            kept = s.res_val[f, q][s.res_key[f, q] >= 0].double()
            upper_ok = kept <= hi[f, q] if q == 0 else kept < hi[f, q]
            assert ((kept >= lo[f, q]) & upper_ok).all(), (f, q, kept, lo[f, q], hi[f, q])
            population = ((values >= lo[f, q]) & ((values <= hi[f, q]) if q == 0 else (values < hi[f, q]))).sum()
            assert len(kept) == min(r, int(population)), (f, q)
            for slot in torch.nonzero(s.res_key[f, q] >= 0).flatten():  # ids point at the sampled token
                c, p = divmod(int(s.res_id[f, q, slot]), T)
                assert float(acts[c, p, f]) == float(s.res_val[f, q, slot])


def test_negatives_never_fired():
    acts, valid, tokens = _data()
    s = _stream(acts, valid, tokens)
    cmax = acts.max(1).values
    for f in range(N):
        for c in s.neg_ctx[f][s.neg_ctx[f] >= 0]:
            assert cmax[c, f] == 0
        assert (s.neg_ctx[f] >= 0).sum() == min(CFG.n_negative, int((cmax[:, f] == 0).sum()))


def test_token_index_equals_brute_force():
    acts, valid, tokens = _data()
    s = _stream(acts, valid, tokens)
    for tok in range(VOCAB):
        best = acts[tokens == tok].amax(0) if (tokens == tok).any() else torch.zeros(N)  # [n]
        order = torch.argsort(best, descending=True)[: CFG.token_top]
        order = order[best[order] > 0]
        got = s.tok_feat[tok][s.tok_feat[tok] >= 0]
        assert torch.allclose(s.tok_val[tok][: len(order)], best[order])
        assert set(got.tolist()) == set(order.tolist())


def test_resumed_stream_equals_uninterrupted():
    acts, valid, tokens = _data()
    whole = _stream(acts, valid, tokens)
    first = _stream(acts, valid, tokens, batches=range(0, 10))
    resumed = FeatureStream(N, T, VOCAB, CFG)
    resumed.load_state_dict({k: v.clone() if torch.is_tensor(v) else v for k, v in first.state_dict().items()})
    resumed = _stream(acts, valid, tokens, batches=range(10, N_CTX), stream=resumed)
    for key, value in whole.state_dict().items():
        other = resumed.state_dict()[key]
        assert (value == other).all() if torch.is_tensor(value) else value == other, key


def test_identical_windows_are_kept_once_in_the_top_list():
    acts, valid, tokens = _data(3)
    # context 7 repeats context 2 token for token, with slightly higher activations (a duplicated document)
    tokens[7] = tokens[2]
    acts[7] = acts[2] * 1.01
    s = _stream(acts, valid, tokens)
    cmax, cpos = acts.max(1)
    for f in range(N):
        kept = [int(i) // T for i in s.top_id[f][s.top_val[f] > 0]]
        assert not (2 in kept and 7 in kept), (f, kept)
        if cmax[2, f] > 0 and (cmax[:, f] > cmax[7, f]).sum() < CFG.top_k:
            assert 7 in kept  # the higher copy stays
        # the list is still the best distinct contexts: brute force without context 2
        order = [c for c in torch.argsort(cmax[:, f], descending=True).tolist() if c != 2 and cmax[c, f] > 0][: CFG.top_k]
        assert kept == order, (f, kept, order)
