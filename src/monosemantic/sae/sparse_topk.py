"""The TopK speed trick, kept apart from the model's meaning (as sparsify's
fused_encoder.py): gradients touch only the k selected latents of each row.

- `topk_encode`: dense pre-activations (one matmul, no autograd graph), an exact
  top-k per row by group maxima (`select_topk`; `select_batch_topk` for BatchTopK),
  then the selected values re-attached to the graph by `gather_encode`, whose
  backward is built from the k selected W_enc columns (one embedding_bag over the
  entries sorted by latent) and gives b_dec its gradient as one matrix-vector product.
- `sparse_decode`: x̂ = Σⱼ top_actsⱼ · W_dec[top_indicesⱼ] with `embedding_bag`;
  its backward writes into the selected W_dec rows only, so an unselected row gets
  exactly zero gradient.

Each function has `dense=True`, the plain autograd reference; tests/sae/
test_sparse_topk.py holds the two equal, values and gradients, and tests/train/
test_fast_step.py holds whole training steps equal to a dense reference step.

Measured (CPU, 2 shared cores, float32, d=576, n=16384, B=4096, k=32; the encoder's
forward matmul is common to both paths and not counted):
    backward of decode:    sparse 0.48 s   dense 1.89 s
    backward of encoder:   sparse 0.26 s   dense 2.10 s
so the sparse backward is kept for both (`python -m monosemantic.sae.sparse_topk`
reruns it; those figures predate the embedding_bag sums and the grouped selection).
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class EncoderOutput(NamedTuple):
    top_acts: Tensor     # [B, k] ReLU of the selected pre-activations, ≥ 0
    top_indices: Tensor  # [B, k] int64 latent ids
    pre_acts: Tensor     # [B, n] encoder pre-activations (fast path: detached)


def _rows_sum(indices: Tensor, weights: Tensor, rows: Tensor, n: int) -> Tensor:
    """out[i] = Σ_{b,j: indices[b,j]=i} weights[b,j] · rows[b]   ([B,k], [B,k], [B,d] -> [n,d]).

    One embedding_bag over the B·k entries sorted by latent: bag i gathers the rows
    that selected latent i, and every output row is written once (a latent never
    selected is an empty bag: exact zeros). At B=4096, k=32, d=576, n=16384 on one
    loaded core: 119 ms, where torch.sparse.mm of a COO [n, B] matrix took 264 ms (it
    zero-fills its [n, d] result twice) and index_add_ of the [B·k, d] products more."""
    B, k = indices.shape
    flat = indices.reshape(-1)                                             # [B*k]
    order = flat.argsort()                                                 # by latent
    counts = torch.bincount(flat, minlength=n)                             # [n]
    offsets = torch.cumsum(counts, 0) - counts                             # [n] start of each bag
    batch = order.div(k, rounding_mode="floor")                            # [B*k] the row of each entry
    return F.embedding_bag(batch, rows, offsets, per_sample_weights=weights.reshape(-1)[order].to(rows.dtype), mode="sum")  # [n, d]


def _sum_dtype(t: Tensor, dtype: torch.dtype) -> torch.dtype:
    """The dtype of the rows `_rows_sum` gathers in a weight gradient: autocast's
    lower precision when it is on (the dense products' gradients are in it too), else
    the weight's. On the CPU embedding_bag reads bfloat16 rows x3.5 faster (its
    float32 path is ~17 ms at B=4096, k=32, d=576 against ~5), two calls a step; it
    sums in float32 either way, so only the gradient's last rounding is bfloat16."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else dtype


def _rows_dot(indices: Tensor, rows: Tensor, table: Tensor) -> Tensor:
    """out[b, j] = rows[b] · table[indices[b, j]]   ([B,k], [B,d], [n,d] -> [B,k]).

    A sampled matmul (SDDMM) at the B·k positions: 0.11 s at the sizes above, where
    gathering table[indices] ([B,k,d]) and bmm took 0.34 s."""
    B, k = indices.shape
    sorted_idx, perm = indices.sort(dim=1)                                 # CSR wants sorted columns
    crow = torch.arange(0, B * k + 1, k, device=indices.device)
    with warnings.catch_warnings():  # torch labels sparse CSR "beta"; we only sample at a fixed pattern
        warnings.simplefilter("ignore")
        pattern = torch.sparse_csr_tensor(crow, sorted_idx.reshape(-1), torch.zeros(B * k, dtype=rows.dtype, device=rows.device),
                                          (B, table.shape[0]), check_invariants=False)
    try:
        vals = torch.sparse.sampled_addmm(pattern, rows, table.t(), beta=0.0).values().reshape(B, k)
    except (RuntimeError, NotImplementedError):  # a backend/dtype without SDDMM: the plain gather
        return torch.bmm(table[indices], rows[:, :, None]).squeeze(-1)
    return torch.empty_like(vals).scatter_(1, perm, vals)                  # back to the caller's order


# --- encoder -------------------------------------------------------------------
class _GatherEncode(torch.autograd.Function):
    """values[b, j] = (x[b] − b_dec) · W_enc[:, idx[b, j]] + b_enc[idx[b, j]].

    Forward takes the values already computed by the dense matmul; backward never
    forms a [B, n] tensor. b_dec's gradient is −Σ_b ∂xc[b] = −W_enc @ ∂b_enc (one
    matrix-vector product: ∂xc[b] = Σⱼ g[b,j] W_enc[:, idx[b,j]] summed over the batch
    is W_enc times the per-latent sums of g, which ∂b_enc already is), so the [B, d]
    input gradient is only built when x itself needs one."""

    @staticmethod
    def forward(ctx, x: Tensor, b_dec: Tensor | None, W_enc: Tensor, b_enc: Tensor, indices: Tensor, values: Tensor) -> Tensor:
        xc = _center(x, b_dec)                                             # [B, d]
        ctx.save_for_backward(xc, W_enc, indices)
        ctx.sum_dtype = _sum_dtype(x, W_enc.dtype)
        ctx.dtypes = (x.dtype, None if b_dec is None else b_dec.dtype, b_enc.dtype)
        return values.clone()

    @staticmethod
    def backward(ctx, grad_values: Tensor):
        xc, W_enc, indices = ctx.saved_tensors
        n = W_enc.shape[1]
        g = grad_values.to(W_enc.dtype)                                    # [B, k]
        need_x, need_b_dec, need_W, need_b_enc = (ctx.needs_input_grad[i] for i in range(4))
        grad_x = grad_b_dec = grad_W_enc = grad_b_enc = None
        if need_x:
            # Σⱼ g[b,j] · W_enc[:, idx[b,j]]  as a weighted bag of W_enc's columns
            # (W_enc is stored column-major, so W_enc.t() is contiguous and this is free).
            grad_x = F.embedding_bag(indices, W_enc.t().contiguous(), per_sample_weights=g, mode="sum").to(ctx.dtypes[0])  # [B, d]
        if need_W:
            grad_W_enc = _rows_sum(indices, g, xc.to(ctx.sum_dtype), n).to(W_enc.dtype).t()  # [d, n], W_enc's column-major layout
        if need_b_enc or need_b_dec:
            per_latent = torch.zeros(n, dtype=W_enc.dtype, device=W_enc.device).index_add_(0, indices.reshape(-1), g.reshape(-1))  # [n]
            if need_b_enc:
                grad_b_enc = per_latent.to(ctx.dtypes[2])
            if need_b_dec:
                grad_b_dec = (W_enc @ per_latent).neg_().to(ctx.dtypes[1])  # [d]
        return grad_x, grad_b_dec, grad_W_enc, grad_b_enc, None, None


def _center(x: Tensor, b_dec: Tensor | None) -> Tensor:
    return x if b_dec is None else x - b_dec


def gather_encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None, indices: Tensor,
                  pre_acts: Tensor | None = None, *, dense: bool = False) -> Tensor:
    """Pre-activations at `indices` [B, m] with a sparse backward. `pre_acts` (the
    detached dense pre-activations) saves recomputing them; b_dec None = the encoder
    does not subtract it."""
    if dense:
        return (_center(x, b_dec) @ W_enc + b_enc).gather(1, indices)
    if pre_acts is None:
        with torch.no_grad():
            values = (_center(x, b_dec)[:, None, :] * W_enc.t()[indices]).sum(-1) + b_enc[indices]
    else:
        values = pre_acts.gather(1, indices)                               # [B, m]
    return _GatherEncode.apply(x, b_dec, W_enc, b_enc, indices, values)


GROUP = 8  # latents per group in `select_topk`: measured fastest of 4, 8, 16, 32


@torch.no_grad()
def select_topk(pre: Tensor, k: int) -> Tensor:
    """[B, n] -> [B, k] indices of each row's k largest values; exact (the same values
    as `pre.topk(k)`; which of several equal values is taken may differ).

    torch.topk on a long row copies it into (value, index) pairs and heap-selects: the
    largest cost of the step after the encoder's matmul. Here the row is cut into n/g
    groups of g latents (strided: group c = latents c, c + n/g, …, so their maxima are
    one vertical SIMD max over g slices), the k groups with the largest maxima are
    kept (a group holding one of the k largest values has a maximum that at most k−1
    other groups exceed), and the k largest of their g·k values are taken; the top-k
    of the n/g maxima is found the same way while rows stay long. Measured at B=4096,
    n=16384, k=32 on a loaded core: 228 ms vs 396 ms for torch.topk (float32), 140 vs
    242 ms (bfloat16)."""
    g = GROUP
    if pre.dim() != 2 or pre.shape[1] % g or pre.shape[1] // g < 4 * k:  # short rows: plain topk
        return pre.topk(k, dim=-1, sorted=False).indices
    B, n = pre.shape
    w = n // g
    grouped = pre.view(B, g, w)                                            # grouped[b, r, c] = pre[b, r·w + c]
    top_groups = select_topk(grouped.amax(1), k)                           # [B, k] in 0..w-1 (the same trick on the maxima)
    cand = grouped.gather(2, top_groups[:, None, :].expand(B, g, k))       # [B, g, k]
    pick = cand.reshape(B, g * k).topk(k, dim=-1, sorted=False).indices    # [B, k] into g·k
    cols = top_groups[:, None, :] + w * torch.arange(g, device=pre.device)[None, :, None]  # [B, g, k] latent ids
    return cols.reshape(B, g * k).gather(1, pick)


@torch.no_grad()
def select_batch_topk(pre: Tensor, K: int) -> Tensor:
    """[B, n] -> [K] flat indices (row·n + latent) of the K largest values of the whole
    batch (BatchTopK); exact as `select_topk`, by the same grouping: the K groups with
    the largest maxima over all rows hold the K largest values. Measured at B=1024,
    n=16384, K=32·B on a loaded core: 377 ms vs 1,368 ms for topk of the flattened
    [B·n] (which heap-selects 32,768 of 16.8M)."""
    g = GROUP
    B, n = pre.shape
    if n % g or B * (n // g) < 4 * K:
        return pre.flatten().topk(K, sorted=False).indices
    w = n // g
    maxima = pre.view(B, g, w).amax(1).flatten()                           # [B·w] group maxima
    top = maxima.topk(K, sorted=False).indices                             # [K] group ids: row·w + c
    rows, first = top.div(w, rounding_mode="floor"), top % w               # [K], [K]
    cols = first[:, None] + w * torch.arange(g, device=pre.device)[None, :]  # [K, g] latent ids
    pick = pre[rows[:, None], cols].flatten().topk(K, sorted=False).indices  # [K] into K·g
    return rows.repeat_interleave(g)[pick] * n + cols.flatten()[pick]


# The last [B, n] buffer of dense_pre_acts, one per thread: train_many steps SAEs
# concurrently on worker threads, and two of one shape must not share a buffer.
_workspace = threading.local()


@torch.no_grad()
def dense_pre_acts(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None) -> Tensor:
    """(x − b_dec) @ W_enc + b_enc  [B, n], no graph, in the autocast dtype if autocast
    is on, written into the buffer of the previous call when shape and dtype match.

    A fresh [B, n] tensor each step is fresh memory from the OS (allocations this
    large are mmapped and unmapped by malloc), and touching it first costs page
    faults: filling 268 MB (B=4096, n=16384, float32) took ~180 ms fresh vs ~20 ms
    reused, most of what the bias broadcast into the product seemed to cost. The
    result is only valid until the next call: callers use it within one forward."""
    xc = _center(x, b_dec)
    if xc.dim() != 2 or x.device.type != "cpu":   # (CUDA's caching allocator reuses memory itself)
        return torch.addmm(b_enc, xc, W_enc) if xc.dim() == 2 else xc @ W_enc + b_enc
    dt = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else W_enc.dtype
    shape = (xc.shape[0], W_enc.shape[1])
    buf = getattr(_workspace, "pre", None)
    if (buf is None or buf.shape != shape or buf.dtype != dt or buf.device != x.device
            or buf.is_inference() != torch.is_inference_mode_enabled()):
        buf = _workspace.pre = torch.empty(shape, dtype=dt, device=x.device)
    # W_enc is column-major (W_decᵀ's layout): cast it as its contiguous transpose,
    # 1.4 ms at [576, 16384] where the strided copy took 4.4
    W = W_enc.t().to(dt).t() if W_enc.dtype != dt and W_enc.t().is_contiguous() else W_enc.to(dt)
    with torch.autocast("cpu", enabled=False):
        return torch.addmm(b_enc.to(dt), xc.to(dt), W, out=buf)


def topk_encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None, k: int,
                *, dense: bool = False) -> EncoderOutput:
    """Top-k of ReLU((x − b_dec) @ W_enc + b_enc) per row."""
    if dense:
        pre = _center(x, b_dec) @ W_enc + b_enc                            # [B, n]
        vals, idx = pre.topk(k, dim=-1, sorted=False)                      # [B, k]
        return EncoderOutput(vals.relu(), idx, pre)
    with torch.no_grad():
        pre = dense_pre_acts(x, W_enc, b_enc, b_dec)                       # [B, n], no graph
        idx = select_topk(pre, k)                                          # [B, k]
    vals = gather_encode(x, W_enc, b_enc, b_dec, idx, pre)
    return EncoderOutput(vals.relu(), idx, pre)


# --- decoder -------------------------------------------------------------------
class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, top_acts: Tensor, top_indices: Tensor, W_dec: Tensor) -> Tensor:
        acts = top_acts.to(W_dec.dtype)
        ctx.save_for_backward(acts, top_indices, W_dec)
        ctx.acts_dtype = top_acts.dtype
        ctx.sum_dtype = _sum_dtype(top_acts, W_dec.dtype)
        return F.embedding_bag(top_indices, W_dec, per_sample_weights=acts, mode="sum")  # [B, d]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        acts, idx, W_dec = ctx.saved_tensors
        g = grad_out.to(W_dec.dtype)                                       # [B, d]
        grad_acts = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_acts = _rows_dot(idx, g, W_dec).to(ctx.acts_dtype)          # [B, k]
        if ctx.needs_input_grad[2]:
            grad_W_dec = _rows_sum(idx, acts, g.to(ctx.sum_dtype), W_dec.shape[0]).to(W_dec.dtype)  # [n, d]
        return grad_acts, None, grad_W_dec


def sparse_decode(top_acts: Tensor, top_indices: Tensor, W_dec: Tensor, *, dense: bool = False) -> Tensor:
    """[B, k] values at [B, k] latent ids -> [B, d] = Σⱼ top_actsⱼ W_dec[top_indicesⱼ] (no b_dec)."""
    if dense:
        acts = torch.zeros(top_acts.shape[0], W_dec.shape[0], dtype=top_acts.dtype, device=top_acts.device)
        acts = acts.scatter_add(1, top_indices, top_acts)                  # [B, n]; repeats add, as embedding_bag
        return acts @ W_dec
    return _SparseDecode.apply(top_acts, top_indices, W_dec)


def densify(top_acts: Tensor, top_indices: Tensor, n: int) -> Tensor:
    """[B, k] sparse -> [B, n] dense, detached (for metrics and `encode`)."""
    out = torch.zeros(top_acts.shape[0], n, dtype=top_acts.dtype, device=top_acts.device)
    return out.scatter_add_(1, top_indices, top_acts.detach())


# --- benchmark -----------------------------------------------------------------
def _benchmark(d: int = 576, n: int = 16384, B: int = 4096, k: int = 32, reps: int = 2) -> None:
    torch.manual_seed(0)
    x = torch.randn(B, d)
    W_enc = torch.randn(d, n, requires_grad=True)
    b_enc = torch.zeros(n, requires_grad=True)
    b_dec = torch.zeros(d, requires_grad=True)
    W_dec = torch.randn(n, d, requires_grad=True)
    for dense in (False, True):
        t_dec = t_enc = 0.0
        for _ in range(reps):
            enc = topk_encode(x, W_enc, b_enc, b_dec, k, dense=dense)
            acts = enc.top_acts.detach().requires_grad_()
            out = sparse_decode(acts, enc.top_indices, W_dec, dense=dense)
            t0 = time.perf_counter()
            out.backward(torch.ones_like(out))
            t1 = time.perf_counter()
            enc.top_acts.backward(acts.grad)
            t2 = time.perf_counter()
            t_dec += t1 - t0
            t_enc += t2 - t1
            for p in (W_enc, b_enc, b_dec, W_dec):
                p.grad = None
        name = "dense " if dense else "sparse"
        print(f"{name}: decode backward {t_dec / reps:.3f} s, encoder backward {t_enc / reps:.3f} s")


if __name__ == "__main__":
    _benchmark()
