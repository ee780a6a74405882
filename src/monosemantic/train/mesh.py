"""The data x feature mesh: N = D·F ranks, the dictionary split over F ranks and
the global batch over D groups of them. `--parallel feature` is the mesh with F = N.

    rank = d·F + f        feature group d: ranks d·F .. d·F + F − 1 (one copy of the
                          dictionary, rows d·B/D .. (d+1)·B/D of every global batch)
                          data group f: ranks f, F + f, ... (latent shard f, every row)

Within a feature group a step is sharded.py's (TopK's selection and x̂'s partial
sums over F ranks); across a data group every shard's gradients are averaged (one
all-reduce of its n/F latents' tensors and b_dec), fired latents OR-ed and metrics
summed. BatchTopK selects over the whole mesh and AuxK normalises over the global
batch, so every architecture gets one process's result. Feature groups take
consecutive ranks: on several nodes put each within a node (its traffic is every
step's activations; the data group's is the shard's gradients, docs/distributed.md).
Checkpoints hold one file per feature shard, written by the ranks of data group 0,
reloadable on any (D, F) and by one process (sharded_checkpoint.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..distributed import World
from ..errors import ConfigError
from ..sae import SAE, SAEConfig, make_sae
from .dead import DeadTracker
from .distributed import Single, SplitRows, check_mesh_splits
from .sharded import SHARDABLE, ShardedSAE
from .sharded_checkpoint import SHARD_AXIS, load_sharded, save_sharded, shard_range


def mesh_groups(world: World, feature_ranks: int) -> tuple[World, World]:
    """-> (this rank's feature group, its data group). Every rank creates every
    group, in the same order (torch.distributed.new_group's rule)."""
    size, F = world.size, feature_ranks
    alone = replace(world, rank=0, size=1)                                # a group of one: no collectives, same device
    if F == size:
        return world, alone
    if F == 1:
        return alone, world
    mine: dict[str, World] = {}
    layouts = {"feature": [list(range(d * F, (d + 1) * F)) for d in range(size // F)],
               "data": [list(range(f, size, F)) for f in range(F)]}
    for kind, groups in layouts.items():
        for ranks in groups:
            group = dist.new_group(ranks)
            if world.rank in ranks:
                mine[kind] = replace(world, rank=ranks.index(world.rank), size=len(ranks), group=group)
    return mine["feature"], mine["data"]


class FeatureSharded(SplitRows, Single):
    """The training-loop hooks for a feature-sharded SAE on a D x F mesh."""

    def __init__(self, world: World, batch_size: int, feature_ranks: int | None = None):
        super().__init__(world)
        D = check_mesh_splits(batch_size, world.size, feature_ranks)
        F = world.size // D
        self.scheme = "feature" if F == world.size else "mesh"
        self.shards, self.replicas = mesh_groups(world, F)
        self.row_slice = (self.replicas.rank, D) if D > 1 else None    # this rank's rows of every global batch
        self.sae: ShardedSAE | None = None

    @property
    def device(self) -> torch.device:
        return self.world.device  # cuda:LOCAL_RANK under NCCL

    def make_sae(self, cfg: SAEConfig) -> ShardedSAE:
        if cfg.architecture not in SHARDABLE:
            raise ConfigError(f"--parallel {self.scheme} supports {', '.join(SHARDABLE)}, not {cfg.architecture}: use --parallel data")
        if cfg.n_latents < self.shards.size:
            raise ConfigError(f"{cfg.n_latents} latents cannot be split over {self.shards.size} ranks")
        self.sae = ShardedSAE(cfg, self.shards, self.replicas, self.world).to(self.device)  # initialised on the CPU, then moved
        return self.sae

    def local_latents(self, cfg: SAEConfig) -> int:
        lo, hi = shard_range(cfg.n_latents, self.shards.rank, self.shards.size)
        return hi - lo

    def sync_and_clip(self, sae: ShardedSAE, max_norm: float) -> None:
        params = [(name, p) for name, p in sae.local.named_parameters() if p.grad is not None]
        if self.replicas.distributed and params:
            flat = torch.cat([p.grad.reshape(-1) for _, p in params])    # one bucket: one all-reduce per step
            self.replicas.all_reduce_(flat, "mean")
            offset = 0
            for _, p in params:
                p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
                offset += p.numel()
        sharded = torch.zeros((), dtype=torch.float64, device=self.device)
        replicated = torch.zeros((), dtype=torch.float64, device=self.device)
        for name, p in params:
            sq = p.grad.double().pow(2).sum()
            if name in SHARD_AXIS:
                sharded += sq
            else:
                replicated += sq                                           # the same on every shard: counted once
        total = (self.shards.all_reduce_(sharded.reshape(1), "sum")[0] + replicated).sqrt()
        coef = min(1.0, max_norm / (float(total) + 1e-6))                  # torch's clip_grad_norm_ rule
        if coef < 1.0:
            for _, p in params:
                p.grad.mul_(coef)

    def dead_count(self, dead: DeadTracker) -> int:
        return int(self.shards.all_reduce_(dead.mask.sum().reshape(1), "sum")[0])

    def dead_fraction(self, dead: DeadTracker) -> float:
        return self.dead_count(dead) / self.sae.cfg.n_latents

    def load_checkpoint(self, directory: Path) -> dict:
        return load_sharded(directory, self.sae.lo, self.sae.hi, self.sae.local)

    def save_checkpoint(self, directory: Path, state: dict) -> Path:
        return save_sharded(directory, state, self.world, self.sae.lo, self.sae.hi, self.sae.local,
                            shard=(self.shards.rank, self.shards.size), writes=self.replicas.rank == 0)

    def gather_sae(self) -> SAE | None:
        """The whole trained SAE on rank 0 (None elsewhere), for RUN/sae."""
        mine = {name: t.cpu() for name, t in self.sae.local.state_dict().items()}
        pieces = self.shards.all_gather_object((self.sae.lo, self.sae.hi, mine))
        if not self.world.is_main:
            return None
        full = make_sae(self.sae.cfg)
        state = full.state_dict()
        for name in state:
            axis = SHARD_AXIS.get(name)
            state[name] = pieces[0][2][name] if axis is None else torch.cat([p[2][name] for p in pieces], dim=axis)
        full.load_state_dict(state)
        return full
