"""BatchTopK SAE (Bussmann et al. 2024): TopK, but the k·B largest ReLU
pre-activations are kept across the whole batch, so the number of active latents
varies per token and averages k.

At inference there is no batch: `encode` uses a learnt threshold θ,
f = ReLU(pre)·[pre > θ], θ being an exponential moving average (rate 0.1) of the
smallest selected activation of each training batch (the first batch sets it).
That minimum falls as training goes on (3.3 -> 1.3 over the synthetic case's 300
steps), so θ must follow the final weights: SAELens's rate 0.01 (dictionary_learning:
0.001) lags ~100 steps, longer than a short run's lr decay, and left θ 14-23 % too high
(held-out L0 11.5 at k 16, 19 at k 32 on the real store, and many rare latents); at
0.1 the lag is ~10 steps and held-out L0 was 16.1 and 32.0 (docs/training.md,
"BatchTopK's threshold"). Everything else (AuxK, init, decoder norm) is TopK's. Saved for SAELens as
"jumprelu" with threshold θ for every latent, which is how SAELens stores it too."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SAE
from .sparse_topk import dense_pre_acts, gather_encode, select_batch_topk
from .topk import TopKSAE

THRESHOLD_EMA = 0.1   # the EMA's rate: a lag of ~10 steps, shorter than the lr decay of a 300-step run (docstring)


@torch.no_grad()
def pad_rows(rows: Tensor, cols: Tensor, B: int) -> tuple[Tensor, Tensor]:
    """Selected (row, latent) pairs -> ([B, m] latent ids, [B, m] valid): row b's
    selected latents first, then index 0 with valid False (m = the most in a row)."""
    counts = torch.bincount(rows, minlength=B)                             # [B]
    m = max(int(counts.max()), 1) if rows.numel() else 1
    order = torch.argsort(rows, stable=True)
    rows, cols = rows[order], cols[order]
    starts = torch.cumsum(counts, 0) - counts                               # [B]
    slot = torch.arange(rows.numel(), device=rows.device) - starts[rows]
    idx = torch.zeros(B, m, dtype=torch.long, device=rows.device)
    valid = torch.zeros(B, m, dtype=torch.bool, device=rows.device)
    idx[rows, slot] = cols
    valid[rows, slot] = True
    return idx, valid


class BatchTopKSAE(TopKSAE):
    saelens_architecture = "jumprelu"
    saelens_imports = ()                  # a SAELens jumprelu folder loads as our jumprelu
    # TopK's 2x lr left 6.1 % of batchtopk's latents dead on 50k held-out rows of the
    # synthetic case at the size (0.1 % at 1x), and matryoshka 3.9 % on the real
    # store at the main job's length (0.7 % at 1x; 2.1 % at a sixth of it, so rising
    # with length): both keep the run's lr (docs/training.md, "BatchTopK's threshold";
    # measured with θ's rate 0.1 — with 0.01, 19.9 % and 11.3 %, mostly θ's doing).
    LR_SCALE = 1.0
    threshold_ema = THRESHOLD_EMA         # per-instance: a resumed run keeps its checkpoint's (train/knobs.py)
    knobs = ("threshold_ema",)

    def saelens_cfg(self) -> dict:
        return SAE.saelens_cfg(self)      # read as a jumprelu: no k

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"threshold": self.threshold.float() * torch.ones(self.cfg.n_latents)}  # [n]; one θ for all

    @classmethod
    def extra_tensor_shapes(cls, cfg) -> dict[str, tuple[int, ...]]:
        return {"threshold": (cfg.n_latents,)}

    @torch.no_grad()
    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.threshold.copy_(tensors["threshold"].max())
        self.threshold_updates.fill_(1)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(()))                 # θ, scalar
        self.register_buffer("threshold_updates", torch.zeros((), dtype=torch.long))

    def encode(self, x: Tensor) -> Tensor:
        pre = self.pre_acts(x)                                             # [..., n]
        return pre.relu() * (pre > self.threshold)

    def _select(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, n = x.shape[0], self.cfg.n_latents
        with torch.no_grad():
            pre = dense_pre_acts(self.as_input(x), self.W_enc, self.b_enc, self.b_dec)  # [B, n], no graph
            # the k·B largest pre-activations; ReLU after selection (an order-preserving
            # map): only entries that are ≤ 0 anyway can differ, and they add nothing
            flat = select_batch_topk(pre, min(self.cfg.k * B, B * n))       # [k*B]
            idx, valid = pad_rows(flat // n, flat % n, B)
        vals = gather_encode(x, self.W_enc, self.b_enc, self.b_dec, idx, pre).relu() * valid  # [B, m]
        if self.training:
            self._update_threshold(vals.detach())
        return vals, idx, pre

    @torch.no_grad()
    def _update_threshold(self, vals: Tensor) -> None:
        pos = vals[vals > 0]
        if pos.numel() == 0:
            return
        lo = pos.min().float()
        if int(self.threshold_updates) == 0:
            self.threshold.copy_(lo)
        else:
            self.threshold.mul_(1 - self.threshold_ema).add_(self.threshold_ema * lo)
        self.threshold_updates += 1
