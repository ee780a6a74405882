"""The train stage of a run directory: RUN/activations (or a .npy) -> RUN/sae.
Several run directories on one store can be trained in one pass (`train_runs`)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..activations import open_store
from ..distributed import World, check_shared_dir
from ..errors import ConfigError, StoreError
from ..preflight import check_disk, check_duration, check_memory
from ..run import Run
from ..sae import SAEConfig, save_sae
from ..sae.registry import ARCHITECTURES, config_for
from ..interop.metadata import run_metadata
from .checkpoint import has_checkpoint
from .config import TrainConfig
from .distributed import RankSlice, make_parallel
from .loop import TrainJob, TrainResult
from .many import train_many


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
    feature_ranks: int | None = None,
) -> TrainResult | None:
    """Train an SAE on the run's store (or `activations`, a store or .npy) and save it
    to RUN/sae in raw units. `sae_cfg` holds SAEConfig fields other than d_in and
    norm_scale (taken from the store). Returns None if RUN/sae is already complete
    with these settings. Under torchrun, `world` holds the ranks and `parallel` says
    how they share the work: "data", "feature" or "mesh" with the dictionary split over
    `feature_ranks` ranks (train/distributed.py, sharded.py, mesh.py)."""
    return train_runs([(run, sae_cfg, cfg)], activations=activations, resume=resume, force=force, progress=progress,
                      world=world, parallel=parallel, feature_ranks=feature_ranks)[0]


def train_runs(
    runs: list[tuple[Run | str | Path, dict | None, TrainConfig | None]],
    *,
    activations: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    on_done: Callable[[Path, TrainResult], None] | None = None,
    world: World | None = None,
    parallel: str = "data",
    feature_ranks: int | None = None,
    workers: int | None = None,
) -> list[TrainResult | None]:
    """`train_run` for several (run_dir, sae_cfg, cfg) at once, in one pass over the
    store (`activations`, or the first run's own): the runs share batch size and seed
    (hence the data order) and may differ in everything else. Each run's SAE is saved
    as soon as it has finished; `on_done(run_dir, result)` is called after that (on
    rank 0 only, under torch.distributed; `world` and `parallel` as in `train_run`).
    `workers`: how many SAEs step at once (train_many's; default one per thread)."""
    if not runs:
        return []
    world = world or World()
    all_dirs = [Run.of(run).dir for run, _, _ in runs]
    store = open_store(activations if activations is not None else all_dirs[0])
    jobs, dirs = [], []
    for run_dir, (_, sae_cfg, cfg) in zip(all_dirs, runs):
        job = _prepare(run_dir, sae_cfg, cfg or TrainConfig(), store, activations, resume, force, world, parallel, feature_ranks)
        if job is not None:
            jobs.append(job)
            dirs.append(run_dir)
    if not jobs:
        return [None] * len(runs)
    if len(jobs) > 1:   # every SAE of the pass is held at once, and up to `workers` step at once
        held = [training_memory(j.sae_cfg, j.cfg.batch_size) for j in jobs]
        at_once = min(len(jobs), workers or torch.get_num_threads())
        need = sum(h for h, _ in held) + sum(sorted((s for _, s in held), reverse=True)[:at_once])
        check_memory(need, f"{len(jobs)} SAEs trained in one pass", "the number of runs, their --latents or --batch-size")
    streams = {(j.cfg.batch_size, j.cfg.seed) for j in jobs}
    if len(streams) > 1:
        raise ConfigError(f"runs trained in one pass read the same batches: their (batch size, seed) differ: {sorted(streams)}")
    batch_size, seed = streams.pop()

    hooks = jobs[0].parallel
    row_slice = (world.rank, world.size) if hooks.scheme == "data" else getattr(hooks, "row_slice", None)

    def batches(start: int):
        if row_slice is not None:  # this rank's rows of each global batch
            index = store.split_indices("train")
            if len(index) < batch_size:
                raise StoreError(f"the train split has {len(index)} rows, fewer than one batch of {batch_size}")
            return iter(RankSlice(store, index, batch_size, seed, start, 4, rank=row_slice[0], world_size=row_slice[1]))
        return store.batches(batch_size, split="train", seed=seed, start_batch=start)

    def save(i: int, result: TrainResult) -> None:
        run_dir, hooks = dirs[i], jobs[i].parallel
        if hooks.scheme in ("feature", "mesh"):
            result.sae = hooks.gather_sae()
        world.barrier()
        if not world.is_main:
            return
        run = Run.of(run_dir)
        save_sae(result.sae, run.sae_dir, metadata=run_metadata(store, run.data_root) | {"training_tokens": result.tokens})
        # latest.pt stays (training can be continued from it); its predecessor is only
        # a safety net while training runs.
        (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
        if on_done is not None:
            on_done(run_dir, result)

    trained = train_many(batches, jobs, progress=progress, on_done=save, workers=workers)
    index = {d: r for d, r in zip(dirs, trained)}
    return [index.get(run_dir) for run_dir in all_dirs]


def _prepare(run: Run | str | Path, sae_cfg: dict | None, cfg: TrainConfig, store, activations, resume: bool, force: bool,
             world: World, parallel: str, feature_ranks: int | None = None) -> TrainJob | None:
    """Record the run's settings and decide what it needs: None when RUN/sae is
    complete, else the job (resuming its checkpoint when asked)."""
    run = Run.of(run)
    run_dir = run.dir
    cfg.validate()
    full_cfg = config_for({"architecture": "relu", **(sae_cfg or {}), "d_in": store.d, "norm_scale": store.norm_scale})
    full_cfg.validate()
    preflight(full_cfg, cfg, run_dir)
    settings = {"sae": asdict(full_cfg), "train": cfg.to_dict(), "activations": str(Path(activations).resolve()) if activations else None}
    # Before any work: the same settings, flags and store on every rank.
    store_id = {k: store.manifest.get(k) for k in ("model", "layer", "count", "tokens_digest", "norm_scale")}
    world.agree("the training settings and store", (settings, store_id, store.count, resume, force, parallel, feature_ranks))
    hooks = make_parallel(parallel, world, cfg.batch_size, feature_ranks)
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
    has_ckpt = has_checkpoint(run_dir / "checkpoints")
    if has_ckpt and not resume:
        raise ConfigError(f"{run_dir} has a training checkpoint: add --resume to continue it, or --force to start again")
    return TrainJob(full_cfg, cfg, run_dir, resume=resume and has_ckpt, parallel=hooks)


def _param_count(sae_cfg: SAEConfig) -> int:
    return 2 * sae_cfg.d_in * sae_cfg.n_latents + sae_cfg.n_latents + sae_cfg.d_in


def training_memory(sae_cfg: SAEConfig, batch_size: int) -> tuple[int, int]:
    """Bytes an SAE holds while it trains (float32 weights, gradients and two Adam
    moments) and bytes its step adds (a few [batch, n] activations)."""
    return 16 * _param_count(sae_cfg), 4 * 4 * batch_size * sae_cfg.n_latents


def preflight(sae_cfg: SAEConfig, cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a training run that cannot fit in memory or on disk, or cannot finish."""
    params = _param_count(sae_cfg)
    what = f"an SAE of {sae_cfg.n_latents:,} latents on d={sae_cfg.d_in}"
    check_memory(sum(training_memory(sae_cfg, cfg.batch_size)), what, "--latents or --batch-size")
    check_disk(run_dir, 4 * params * 5, what + " (the SAE, its checkpoint and the previous one)", "--latents")
    steps = cfg.total_steps
    step_flops = ARCHITECTURES[sae_cfg.architecture].step_flops(sae_cfg, cfg.batch_size, 0).total
    check_duration(steps * step_flops, f"training on {cfg.n_tokens:,} tokens", "--train-tokens", steps)


def training_warnings(metrics: dict) -> list[str]:
    """What a finished run's last metrics say went wrong, as sentences for stderr."""
    out = []
    dead, fve = metrics.get("dead_fraction"), metrics.get("fve")
    if dead is not None and dead >= 0.9:
        out.append(f"{dead:.0%} of the latents are dead at the end of training: the SAE learned almost nothing "
                   "(lower --lr, or the sparsity coefficient)")
    if fve is not None and not fve > 0:
        out.append(f"FVE {fve:.3f}: the reconstruction is no better than the mean (training diverged or collapsed; lower --lr)")
    return out

