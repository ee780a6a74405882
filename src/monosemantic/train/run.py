"""The train stage of a run directory: RUN/activations (or a .npy) -> RUN/sae."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from ..activations import open_store
from ..distributed import World, check_shared_dir
from ..errors import ConfigError, StoreError
from ..run import Run
from ..sae import save_sae
from ..sae.registry import config_for
from .checkpoint import has_checkpoint
from .config import TrainConfig
from .distributed import RankSlice, make_parallel
from .loop import TrainResult, train_sae


def sae_is_complete(run: Run | str | Path) -> bool:
    return Run.of(run).has_sae


def train_run(
    run: Run | str | Path,
    sae_cfg: dict | None = None,
    cfg: TrainConfig | None = None,
    *,
    activations: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    world: World | None = None,
    parallel: str = "data",
) -> TrainResult | None:
    """Train an SAE on the run's store (or `activations`, a store or .npy) and save it
    to RUN/sae in raw units. `sae_cfg` holds SAEConfig fields other than d_in and
    norm_scale (taken from the store). Returns None if RUN/sae is already complete
    with these settings. Under torchrun, `world` holds the ranks and `parallel` says
    how they share the work: "data" or "feature" (train/distributed.py, sharded.py)."""
    run = Run.of(run)
    world = world or World()
    run_dir = run.dir
    cfg = cfg or TrainConfig()
    cfg.validate()
    store = open_store(activations if activations is not None else run_dir)
    full_cfg = config_for({"architecture": "relu", **(sae_cfg or {}), "d_in": store.d, "norm_scale": store.norm_scale})
    full_cfg.validate()
    settings = {"sae": asdict(full_cfg), "train": cfg.to_dict(), "activations": str(Path(activations).resolve()) if activations else None}
    # Before any work: the same settings, flags and store on every rank.
    store_id = {k: store.manifest.get(k) for k in ("model", "layer", "count", "tokens_digest", "norm_scale")}
    world.agree("the training settings and store", (settings, store_id, store.count, resume, force, parallel))
    hooks = make_parallel(parallel, world, cfg.batch_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_shared_dir(world, run_dir / "checkpoints")
    if force and world.is_main:
        for stale in ("sae", "checkpoints"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        run.metrics_path.unlink(missing_ok=True)
    if world.is_main:
        run.record("train", settings, replace=force)
    world.barrier()
    if run.has_sae:
        return None
    if has_checkpoint(run_dir / "checkpoints") and not resume:
        raise ConfigError(f"{run_dir} has a training checkpoint: add --resume to continue it, or --force to start again")

    def batches(start: int):
        if hooks.scheme == "data":  # this rank's rows of each global batch
            index = store.split_indices("train")
            if len(index) < cfg.batch_size:
                raise StoreError(f"the train split has {len(index)} rows, fewer than one batch of {cfg.batch_size}")
            return iter(RankSlice(store, index, cfg.batch_size, cfg.seed, start, 4, rank=world.rank, world_size=world.size))
        return store.batches(cfg.batch_size, split="train", seed=cfg.seed, start_batch=start)

    result = train_sae(batches, full_cfg, cfg, out_dir=run_dir, resume=resume and has_checkpoint(run_dir / "checkpoints"),
                       progress=progress, parallel=hooks)
    if hooks.scheme == "feature":
        result.sae = hooks.gather_sae()
    world.barrier()
    if not world.is_main:
        return result
    metadata = {"model_name": store.model, "hook_layer": store.layer,
                "hook_name": f"blocks.{store.layer}.hook_resid_post" if store.layer is not None else None,
                "training_tokens": result.tokens}
    save_sae(result.sae, run.sae_dir, metadata=metadata)
    # latest.pt stays (training can be continued from it); its predecessor is only
    # a safety net while training runs.
    (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
    return result

