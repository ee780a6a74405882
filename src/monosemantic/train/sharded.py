"""Feature-sharded training: a dictionary split by latents over the ranks.

Rank r holds latents [lo_r, hi_r): W_enc[:, lo:hi], W_dec[lo:hi], b_enc[lo:hi] and
their Adam moments (elementwise, so a sharded Adam is the full Adam); b_dec is
replicated. Every rank reads the whole batch x, computes its slice of the
pre-activations and its latents' share of x̂, and the shares are summed
(sharded_ops.py). ReLU needs nothing else; TopK takes each rank's local top-k by
pre-activation, gathers the candidates and keeps the global top-k (AuxK selects the
dead latents' top-aux_k the same way); BatchTopK keeps the k·B largest of the whole
batch the same way (and its threshold from the global selection). JumpReLU needs no
selection: its sparsity terms are sums over latents (the SAE class's own
`penalty_terms`), so the slices' terms are summed, and its bandwidth ε, a median
over all latents, is taken over the gathered per-latent statistics. The result is
what one process computes, up to float summation order (tests/train/
test_distributed.py, test_mesh.py).

On the data x feature mesh (mesh.py) `world` is this rank's feature group and
`replicas` its data group (the ranks holding the same latents for other rows of the
global batch): AuxK's normaliser and BatchTopK's selection span the global batch,
as one process's do. The training-loop hooks are mesh.py's FeatureSharded.

Initialisation: up to FULL_INIT_ELEMENTS each rank draws the full dictionary under
the run's seed (exactly one process's weights) and keeps its slice; above, every
block of INIT_BLOCK latents is drawn from its own generator (seed, block), the same
weights on any number of ranks."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
from torch import Tensor

from ..distributed import World
from ..sae import SAEConfig, make_sae
from ..sae.base import ForwardOutput, mse_term
from ..sae.registry import ARCHITECTURES
from ..sae.sparse_topk import densify, gather_encode, sparse_decode, topk_encode
from .sharded_checkpoint import SHARD_AXIS, shard_range

FULL_INIT_ELEMENTS = 1 << 27  # n·d: 512 MiB per float32 matrix
INIT_BLOCK = 65_536
SHARDABLE = ("relu", "topk", "batchtopk", "jumprelu")


class ShardedSAE(nn.Module):
    """This rank's slice of an SAE; `local` is an SAE of the slice's width, whose
    row-wise hooks (decoder-norm handling, b_dec init) apply unchanged."""

    def __init__(self, cfg: SAEConfig, world: World, replicas: World | None = None, whole: World | None = None):
        super().__init__()
        self.cfg, self.world = cfg, world                                  # world: the ranks sharing this batch's latents
        self.replicas = replicas or World()                                # the ranks with the same latents, other rows
        self.whole = whole or world                                        # every rank (BatchTopK's selection)
        self.lo, self.hi = shard_range(cfg.n_latents, world.rank, world.size)
        self.width = max(b - a for a, b in (shard_range(cfg.n_latents, r, world.size) for r in range(world.size)))
        n = self.hi - self.lo
        local_cfg = replace(cfg, n_latents=n, k=min(cfg.k, n))
        if cfg.n_latents * cfg.d_in <= FULL_INIT_ELEMENTS:
            full = make_sae(cfg).state_dict()  # under the loop's seed: one process's initial weights
        else:
            full = None
        self.local = ARCHITECTURES[cfg.architecture](local_cfg)
        state = self.local.state_dict()
        for name, tensor in state.items():
            axis = SHARD_AXIS.get(name)
            if full is not None:
                tensor.copy_(full[name] if axis is None else full[name].narrow(axis, self.lo, n))
        if full is None:
            self._blocked_init()

    @torch.no_grad()
    def _blocked_init(self) -> None:
        seed, d = torch.initial_seed(), self.cfg.d_in
        norm = type(self.local).decoder_init_norm
        rows = []
        for block in range(self.lo // INIT_BLOCK, (self.hi - 1) // INIT_BLOCK + 1):
            g = torch.Generator().manual_seed(seed * 1_000_003 + block)
            w = torch.randn(INIT_BLOCK, d, generator=g)
            w = w / w.norm(dim=1, keepdim=True) * norm
            a, b = max(self.lo, block * INIT_BLOCK), min(self.hi, (block + 1) * INIT_BLOCK)
            rows.append(w[a - block * INIT_BLOCK : b - block * INIT_BLOCK])
        w = torch.cat(rows)                                                # [n_local, d]
        self.local.W_dec.copy_(w)
        self.local.W_enc.copy_(w.t())

    # The trainer sees the local SAE's tensors, hooks and optimiser groups.
    def state_dict(self, *args, **kwargs):
        return self.local.state_dict(*args, **kwargs)

    def load_state_dict(self, state, strict: bool = True):
        return self.local.load_state_dict(state, strict)

    def param_groups(self) -> list[dict]:
        return self.local.param_groups()

    def training_knobs(self) -> dict:
        return self.local.training_knobs()

    def adopt_knobs(self, values: dict) -> None:
        self.local.adopt_knobs(values)

    def init_from_data(self, sample: Tensor) -> None:
        if self.cfg.architecture == "jumprelu":
            self.local.init_from_data(sample, all_latents=self._all_latents)
        else:
            self.local.init_from_data(sample)

    def _all_latents(self, values: Tensor) -> Tensor:
        """[n_local] per-latent values -> [n_latents], every shard's in latent order."""
        padded = torch.cat([values, values.new_zeros(self.width - values.numel())])
        sizes = [b - a for a, b in (shard_range(self.cfg.n_latents, r, self.world.size) for r in range(self.world.size))]
        return torch.cat([v[:m] for v, m in zip(self.world.all_gather(padded), sizes)])

    def before_step(self) -> None:
        self.local.before_step()

    def after_step(self) -> None:
        self.local.after_step()

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        if self.cfg.architecture == "relu":
            return self._relu(x, sparsity_scale)
        if self.cfg.architecture == "jumprelu":
            return self._jumprelu(x, sparsity_scale, dead_mask)
        return self._topk(x, dead_mask, batch=self.cfg.architecture == "batchtopk")

    def _reduce(self, partial: Tensor) -> Tensor:
        from .sharded_ops import reduce_partials

        return reduce_partials(self.world, partial.float())

    def _relu(self, x: Tensor, sparsity_scale: float) -> ForwardOutput:
        L = self.local
        f = L.pre_acts(x).relu()                                           # [B, n_local]
        x_hat = self._reduce(f @ L.W_dec) + L.b_dec                        # [B, d], all latents
        mse = mse_term(x_hat, x)
        l1 = self._reduce((f.float() @ L.W_dec.norm(dim=1).float()).mean())  # Σ over every rank's latents
        loss = mse + self.cfg.l1_coefficient * sparsity_scale * l1
        n_active, fired = L._stats(f)
        n_active = self.world.all_reduce_(n_active.clone(), "sum")
        return ForwardOutput(x_hat, f, loss, {"mse": mse.detach(), "l1": l1.detach()}, n_active, fired)

    def _jumprelu(self, x: Tensor, sparsity_scale: float, dead_mask: Tensor | None) -> ForwardOutput:
        L = self.local
        pre = L.pre_acts(x)                                                # [B, n_local], no b_dec at the input
        f = L.activate(pre)                                                # [B, n_local], ≥ 0
        x_hat = self._reduce(f @ L.W_dec) + L.b_dec                        # [B, d], all latents
        mse = mse_term(x_hat, x)
        terms = {name: self._reduce(t) for name, t in L.penalty_terms(pre, dead_mask).items()}  # Σ over every rank's latents
        loss = mse + L.penalty(terms, sparsity_scale)
        n_active, fired = L._stats(f)
        n_active = self.world.all_reduce_(n_active.clone(), "sum")
        return ForwardOutput(x_hat, f, loss, {"mse": mse.detach(), **{k: v.detach() for k, v in terms.items()}}, n_active, fired)

    def _topk(self, x: Tensor, dead_mask: Tensor | None, batch: bool = False) -> ForwardOutput:
        from .sharded_ops import global_topk_mask, shared_input

        L, k = self.local, self.cfg.k
        b_dec_in = shared_input(self.world, L.b_dec)                       # the encoder's b_dec: gradient shares summed
        if batch:
            acts, top_indices, pre, n_active = self._batch_select(x, b_dec_in)
        else:
            enc = topk_encode(x, L.W_enc, L.b_enc, b_dec_in, min(k, self.hi - self.lo))  # local candidates [B, m]
            raw = enc.pre_acts.gather(1, enc.top_indices)                  # select by pre-activation, as one process does
            keep, chosen = global_topk_mask(self.world, raw, k, min(k, self.width))
            acts = enc.top_acts * keep                                     # [B, m], unselected -> 0 (and no gradient)
            top_indices, pre, n_active = enc.top_indices, enc.pre_acts, (chosen > 0).sum(-1)
        x_hat = self._reduce(sparse_decode(acts, top_indices, L.W_dec)) + L.b_dec
        mse = mse_term(x_hat, x)
        aux = self._auxk(x, x_hat, pre, b_dec_in, dead_mask)
        loss = mse + self.cfg.aux_coefficient * aux
        active = acts.detach() > 0
        fired = torch.zeros(self.hi - self.lo, dtype=torch.bool, device=x.device)
        fired[top_indices[active]] = True
        local_acts = lambda: densify(acts, top_indices, self.hi - self.lo)  # [B, n_local]
        return ForwardOutput(x_hat, local_acts, loss, {"mse": mse.detach(), "aux": aux.detach()}, n_active, fired)

    def _batch_select(self, x: Tensor, b_dec_in: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """BatchTopK: the k·B largest ReLU pre-activations of the global batch (B rows
        here times the replicas) over all ranks (each rank's k·B largest are the
        candidates). -> (acts [B, m] with gradient, latent ids [B, m],
        pre-activations [B, n_local], L0 per row [B])."""
        from ..sae.batchtopk import pad_rows
        from .sharded_ops import global_topk_mask

        L, B, n = self.local, x.shape[0], self.hi - self.lo
        rows = B * self.replicas.size                                      # the global batch
        total = min(self.cfg.k * rows, rows * self.cfg.n_latents)
        with torch.no_grad():
            pre = L.pre_acts(x)                                            # [B, n_local], no graph
            cand = pre.relu().flatten().topk(min(total, B * n), sorted=False)  # [m] local candidates
            keep, chosen = global_topk_mask(self.whole, cand.values[None], total, min(total, B * self.width))
            flat = cand.indices[keep[0]]
            idx, valid = pad_rows(flat // n, flat % n, B)
        vals = gather_encode(x, L.W_enc, L.b_enc, b_dec_in, idx, pre).relu() * valid  # [B, m]
        if L.training:
            L._update_threshold(chosen)                                    # the global selection's smallest positive value
        n_active = self.world.all_reduce_((vals.detach() > 0).sum(-1), "sum")
        return vals, idx, pre, n_active

    def _auxk(self, x: Tensor, x_hat: Tensor, pre: Tensor, b_dec_in: Tensor, dead_mask: Tensor | None) -> Tensor:
        from .sharded_ops import global_topk_mask

        zero = x_hat.new_zeros((), dtype=torch.float32)
        if dead_mask is None or self.cfg.aux_coefficient == 0:
            return zero
        n_dead = int(self.world.all_reduce_(dead_mask.sum().reshape(1), "sum"))
        if n_dead == 0:
            return zero
        m = min(self.cfg.effective_aux_k, n_dead)
        L = self.local
        with torch.no_grad():
            cand = pre.masked_fill(~dead_mask, float("-inf")).topk(min(m, self.hi - self.lo), dim=-1, sorted=False)
        keep, _ = global_topk_mask(self.world, cand.values, m, min(m, self.width))
        vals = gather_encode(x, L.W_enc, L.b_enc, b_dec_in, cand.indices, pre).relu() * keep
        e_hat = self._reduce(sparse_decode(vals, cand.indices, L.W_dec))  # [B, d], no b_dec
        e = (x.float() - x_hat.float()).detach()
        if not self.replicas.distributed:
            return (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum().clamp_min(1e-12)
        # The normaliser spans the global batch, Σ‖e − ē‖² = Σ‖e‖² − ‖Σe‖²/B from the
        # replicas' sums; each replica's share is scaled by D, so that the gradients
        # averaged over the data group are the global batch's.
        e64 = e.double()
        sums = torch.cat([e64.pow(2).sum().reshape(1), e64.sum(0), e64.new_tensor([e.shape[0]])])  # [d + 2]
        sums = self.replicas.all_reduce_(sums, "sum")
        den = (sums[0] - sums[1:-1].pow(2).sum() / sums[-1]).clamp_min(1e-12)
        return (e_hat - e).pow(2).sum() * self.replicas.size / den.float()
