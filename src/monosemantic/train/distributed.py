"""How the training loop runs over ranks: the hooks each SAETrainer calls, and the
data-parallel scheme.

`Single` (one process) makes every hook the identity. `DataParallel`: every rank
holds the whole SAE and reads its contiguous slice of every global batch (rank r:
rows [r·B/N, (r+1)·B/N) of batch k, the rows one process would read); gradients are
summed and divided by N in one bucket before clipping, which is exactly the
gradient of the global batch mean for losses that are means over rows (ReLU's
MSE + λ·L1, TopK's MSE). AuxK's normaliser and BatchTopK's selection span the
batch, so there each rank's slice stands in for the global batch (as in every
data-parallel SAE trainer). Fired latents are OR-ed over ranks, metrics summed,
checkpoints written once by rank 0 in the single-process format (so a
data-parallel run resumes on any number of ranks). Feature sharding: sharded.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..activations.loader import BatchLoader
from ..distributed import World
from ..errors import ConfigError
from ..sae import SAE, SAEConfig, make_sae
from .checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from .dead import DeadTracker


def clip_gradients(params, max_norm: float) -> None:
    """torch's clip_grad_norm_ (the same formula and result), without its multiply by
    1 when the norm is already under max_norm: on the CPU reading the norm costs
    nothing, and that multiply rewrote every gradient (~3 ms of a 16,384-latent step).
    On an accelerator it always multiplies, as torch does, to stay free of syncs."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    total = torch.nn.utils.get_total_norm([p.grad for p in params])
    if params[0].device.type != "cpu" or max_norm / (float(total) + 1e-6) < 1.0:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)


class Single:
    """One process: what `train_sae` does without torch.distributed."""

    scheme = "single"

    def __init__(self, world: World | None = None):
        self.world = world or World()

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    @property
    def device(self) -> torch.device:
        """Where the SAE, its batches and its optimiser state live (the CPU here)."""
        return torch.device("cpu")

    def make_sae(self, cfg: SAEConfig) -> SAE:
        return make_sae(cfg)

    def local_latents(self, cfg: SAEConfig) -> int:
        return cfg.n_latents

    def global_batch(self, x: torch.Tensor) -> torch.Tensor:
        """The whole batch step 0 initialises from (b_dec at its geometric median)."""
        return x

    def global_rows(self, rows: int) -> int:
        return rows

    def fired(self, fired: torch.Tensor) -> torch.Tensor:
        return fired

    def sync_and_clip(self, sae: SAE, max_norm: float) -> None:
        clip_gradients(sae.parameters(), max_norm)

    def sum_metrics_(self, values: torch.Tensor) -> torch.Tensor:
        """Per-window metric sums [k] float64, summed over the ranks that saw different rows."""
        return values

    def dead_count(self, dead: DeadTracker) -> int:
        return int(dead.mask.sum())

    def dead_fraction(self, dead: DeadTracker) -> float:
        return dead.fraction

    def has_checkpoint(self, directory: Path) -> bool:
        return has_checkpoint(directory)

    def load_checkpoint(self, directory: Path) -> dict:
        return load_checkpoint(directory)

    def save_checkpoint(self, directory: Path, state: dict) -> Path:
        return save_checkpoint(directory, state)


class SplitRows:
    """The hooks of a scheme whose `replicas` ranks each step on other rows of one
    global batch: data parallel (the whole world) and the mesh's data groups
    (mesh.FeatureSharded, whose feature groups' ranks hold the same rows)."""

    replicas: World

    def global_batch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.replicas.all_gather(x))                     # [B, d] in global row order

    def global_rows(self, rows: int) -> int:
        return rows * self.replicas.size

    def fired(self, fired: torch.Tensor) -> torch.Tensor:
        return self.replicas.all_reduce_(fired.to(torch.uint8), "max").bool()

    def sum_metrics_(self, values: torch.Tensor) -> torch.Tensor:
        return self.replicas.all_reduce_(values, "sum")


class DataParallel(SplitRows, Single):
    scheme = "data"

    def __init__(self, world: World, batch_size: int):
        super().__init__(world)
        check_batch_splits(batch_size, world.size)
        self.local_rows = batch_size // world.size

    @property
    def replicas(self) -> World:
        return self.world

    @property
    def device(self) -> torch.device:
        return self.world.device  # cuda:LOCAL_RANK under NCCL

    def make_sae(self, cfg: SAEConfig) -> SAE:
        sae = make_sae(cfg).to(self.device)  # initialised on the CPU, as one process does, then moved
        for tensor in list(sae.parameters()) + list(sae.buffers()):  # guard: rank 0's weights everywhere
            if self.world.distributed:
                torch.distributed.broadcast(tensor.data, src=0)
        return sae

    def sync_and_clip(self, sae: SAE, max_norm: float) -> None:
        grads = [p.grad for p in sae.parameters() if p.grad is not None]
        if self.world.distributed and grads:
            flat = torch.cat([g.reshape(-1) for g in grads])              # one bucket: one all-reduce per step
            self.world.all_reduce_(flat, "mean")
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        clip_gradients(sae.parameters(), max_norm)

    def save_checkpoint(self, directory: Path, state: dict) -> Path:
        path = save_checkpoint(directory, state) if self.is_main else directory / "latest.pt"
        self.world.barrier()  # nobody moves on (or resumes) before the checkpoint is complete
        return path


def check_batch_splits(batch_size: int, ranks: int) -> None:
    """Data parallel reads B/N rows per rank: B must divide by N."""
    if batch_size % ranks:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {ranks} ranks: use a multiple of {ranks}")


def check_scheme_flags(scheme: str, feature_ranks: int | None) -> None:
    if (scheme == "mesh") != (feature_ranks is not None):
        raise ConfigError("--feature-ranks F goes with --parallel mesh (and mesh needs it)")


def check_mesh_splits(batch_size: int, ranks: int, feature_ranks: int | None) -> int:
    """A D x F mesh (`feature_ranks` F, None: all N ranks, plain feature sharding):
    F must divide N and the batch split over the D = N/F data groups. -> D."""
    F = feature_ranks or ranks
    if F < 1 or ranks % F:
        raise ConfigError(f"--feature-ranks {F} does not divide the {ranks} ranks: use a divisor of {ranks}")
    D = ranks // F
    if batch_size % D:
        raise ConfigError(f"--batch-size {batch_size} does not split evenly over {D} data groups: use a multiple of {D}")
    return D


class RankSlice(BatchLoader):
    """This rank's rows of every global batch of a BatchLoader (same seed, same order)."""

    def __init__(self, *args, rank: int, world_size: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.rank, self.world_size = rank, world_size

    def batch_indices(self, k: int) -> np.ndarray:
        rows = super().batch_indices(k)
        per = len(rows) // self.world_size
        return rows[self.rank * per : (self.rank + 1) * per]


def make_parallel(scheme: str, world: World, batch_size: int, feature_ranks: int | None = None):
    """The hooks for `--parallel SCHEME` on `world` (one process: Single); "mesh"
    splits the dictionary over `feature_ranks` ranks (mesh.py)."""
    if scheme not in ("data", "feature", "mesh"):
        raise ConfigError(f"--parallel must be data, feature or mesh, got {scheme!r}")
    check_scheme_flags(scheme, feature_ranks)
    if not world.distributed:
        return Single(world)
    if scheme == "data":
        return DataParallel(world, batch_size)
    from .mesh import FeatureSharded

    return FeatureSharded(world, batch_size, feature_ranks)
