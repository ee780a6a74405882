"""The TopK speed trick, kept apart from the model's meaning (as sparsify's
fused_encoder.py): gradients touch only the k selected latents of each row.

- `topk_encode`: dense pre-activations (one matmul, no autograd graph), top-k per
  row, then the selected values re-attached to the graph by `gather_encode`, whose
  backward is built from the k selected W_enc columns with `index_add_`.
- `sparse_decode`: x̂ = Σⱼ top_actsⱼ · W_dec[top_indicesⱼ] with `embedding_bag`;
  its backward writes into the selected W_dec rows only (`index_add_`), so an
  unselected row gets exactly zero gradient.

Each function has `dense=True`, the plain autograd reference; tests/sae/
test_sparse_topk.py holds the two equal, values and gradients.

Measured (CPU, 2 shared cores, float32, d=576, n=16384, B=4096, k=32; the encoder's
forward matmul is common to both paths and not counted):
    backward of decode:    sparse 0.48 s   dense 1.89 s
    backward of encoder:   sparse 0.26 s   dense 2.10 s
so the sparse backward is kept for both (`python -m monosemantic.sae.sparse_topk`
reruns it).
"""

from __future__ import annotations

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

    A sparse [n, B] matrix times rows: 0.15 s at B=4096, k=32, d=576, n=16384, where
    index_add_ of the [B·k, d] products took 0.38 s and the dense [n,B]@[B,d] 1.47 s.
    Latents never selected get exact zeros."""
    B, k = indices.shape
    batch = torch.arange(B, device=indices.device).repeat_interleave(k)   # [B*k]
    S = torch.sparse_coo_tensor(torch.stack([indices.reshape(-1), batch]), weights.reshape(-1),
                                (n, B), check_invariants=False)
    return torch.sparse.mm(S, rows)                                        # [n, d]


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
    """values[b, j] = xc[b] · W_enc[:, idx[b, j]] + b_enc[idx[b, j]].

    Forward takes the values already computed by the dense matmul; backward never
    forms a [B, n] tensor."""

    @staticmethod
    def forward(ctx, xc: Tensor, W_enc: Tensor, b_enc: Tensor, indices: Tensor, values: Tensor) -> Tensor:
        ctx.save_for_backward(xc, W_enc, indices)
        ctx.dtypes = (xc.dtype, W_enc.dtype, b_enc.dtype)
        return values.clone()

    @staticmethod
    def backward(ctx, grad_values: Tensor):
        xc, W_enc, indices = ctx.saved_tensors
        n = W_enc.shape[1]
        g = grad_values.to(W_enc.dtype)                                    # [B, k]
        flat = indices.reshape(-1)                                         # [B*k]
        grad_xc = grad_W_enc = grad_b_enc = None
        if ctx.needs_input_grad[0]:
            # Σⱼ g[b,j] · W_enc[:, idx[b,j]]  as a weighted bag of W_enc's columns.
            # (embedding_bag on the transposed view took 1.5 s; on a contiguous copy 0.06 s)
            grad_xc = F.embedding_bag(indices, W_enc.t().contiguous(), per_sample_weights=g, mode="sum")  # [B, d]
            grad_xc = grad_xc.to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            grad_W_enc = _rows_sum(indices, g, xc.to(W_enc.dtype), n).t()    # [d, n]
        if ctx.needs_input_grad[2]:
            grad_b_enc = torch.zeros(n, dtype=W_enc.dtype, device=W_enc.device)
            grad_b_enc = grad_b_enc.index_add_(0, flat, g.reshape(-1)).to(ctx.dtypes[2])
        return grad_xc, grad_W_enc, grad_b_enc, None, None


def _center(x: Tensor, b_dec: Tensor | None) -> Tensor:
    return x if b_dec is None else x - b_dec


def gather_encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None, indices: Tensor,
                  pre_acts: Tensor | None = None, *, dense: bool = False) -> Tensor:
    """Pre-activations at `indices` [B, m] with a sparse backward. `pre_acts` (the
    detached dense pre-activations) saves recomputing them; b_dec None = the encoder
    does not subtract it."""
    xc = _center(x, b_dec)                                                 # [B, d]
    if dense:
        return (xc @ W_enc + b_enc).gather(1, indices)
    if pre_acts is None:
        with torch.no_grad():
            values = (xc[:, None, :] * W_enc.t()[indices]).sum(-1) + b_enc[indices]
    else:
        values = pre_acts.gather(1, indices)                               # [B, m]
    return _GatherEncode.apply(xc, W_enc, b_enc, indices, values)


def topk_encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None, k: int,
                *, dense: bool = False) -> EncoderOutput:
    """Top-k of ReLU((x − b_dec) @ W_enc + b_enc) per row."""
    if dense:
        pre = _center(x, b_dec) @ W_enc + b_enc                            # [B, n]
        vals, idx = pre.topk(k, dim=-1, sorted=False)                      # [B, k]
        return EncoderOutput(vals.relu(), idx, pre)
    with torch.no_grad():
        pre = torch.addmm(b_enc, _center(x, b_dec), W_enc)                 # [B, n], no graph; bias fused
        idx = pre.topk(k, dim=-1, sorted=False).indices                    # [B, k]
    vals = gather_encode(x, W_enc, b_enc, b_dec, idx, pre)
    return EncoderOutput(vals.relu(), idx, pre)


# --- decoder -------------------------------------------------------------------
class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, top_acts: Tensor, top_indices: Tensor, W_dec: Tensor) -> Tensor:
        acts = top_acts.to(W_dec.dtype)
        ctx.save_for_backward(acts, top_indices, W_dec)
        ctx.acts_dtype = top_acts.dtype
        return F.embedding_bag(top_indices, W_dec, per_sample_weights=acts, mode="sum")  # [B, d]

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        acts, idx, W_dec = ctx.saved_tensors
        g = grad_out.to(W_dec.dtype)                                       # [B, d]
        grad_acts = grad_W_dec = None
        if ctx.needs_input_grad[0]:
            grad_acts = _rows_dot(idx, g, W_dec).to(ctx.acts_dtype)          # [B, k]
        if ctx.needs_input_grad[2]:
            grad_W_dec = _rows_sum(idx, acts, g, W_dec.shape[0])           # [n, d]
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
