"""Feature activations of an SAE on a sample of store rows, kept sparse.

Splitting and completeness both need every feature of every family member on the same
tokens. Dense, 60k rows x 32,768 latents is 7.9 GB of float32; an SAE fires ~20 of
them per token, so the rows are encoded in chunks and only the nonzeros kept (a
scipy CSR matrix: ~15 MB per member at that size)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from ..progress import progress_bar


@torch.no_grad()
def sparse_codes(sae, store, index: np.ndarray, *, chunk: int = 2048, desc: str = "encode", progress: bool = True) -> sp.csr_matrix:
    """Activations of every latent of `sae` on the store's raw rows `index`:
    CSR float32 [len(index), n_latents], ≥ 0 (zeros not stored)."""
    n = int(sae.W_dec.shape[0])
    parts = []
    bar = progress_bar(total=len(index), desc=desc, unit="row", enabled=progress, leave=False)
    for start in range(0, len(index), chunk):
        x = torch.from_numpy(store.gather(np.asarray(index[start : start + chunk])))   # [b, d] raw units
        acts = sae.encode(x.to(sae.W_enc.dtype)).float().clamp_min_(0).numpy()         # [b, n]
        parts.append(sp.csr_matrix(acts))
        bar.update(len(x))
    bar.close()
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n), dtype=np.float32)


def unit_rows(w: torch.Tensor | np.ndarray) -> np.ndarray:
    """Decoder rows scaled to norm 1 (a dead row of zeros stays zero), float32 [n, d]."""
    w = np.asarray(w.detach().float().numpy() if isinstance(w, torch.Tensor) else w, dtype=np.float32)
    return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)


class TopExamples(NamedTuple):
    rows: np.ndarray    # [n_latents, k] int64 positions into the encoded rows, -1 where fewer fired
    acts: np.ndarray    # [n_latents, k] float32, strongest first, 0 where none


def top_examples(codes: sp.spmatrix, k: int = 3) -> TopExamples:
    """The k strongest activations of each latent in `codes` [rows, n]."""
    csc = sp.csc_matrix(codes)
    n = csc.shape[1]
    rows = np.full((n, k), -1, dtype=np.int64)
    acts = np.zeros((n, k), dtype=np.float32)
    for j in range(n):
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if hi == lo:
            continue
        values, where = csc.data[lo:hi], csc.indices[lo:hi]
        best = np.argsort(-values, kind="stable")[:k]
        rows[j, : len(best)] = where[best]
        acts[j, : len(best)] = values[best]
    return TopExamples(rows, acts)
