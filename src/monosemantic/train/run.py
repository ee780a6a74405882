"""The train stage of a run directory: RUN/activations (or a .npy) -> RUN/sae.
Several run directories on one store can be trained in one pass (`train_runs`)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..activations import open_store
from ..errors import ConfigError
from ..run_config import record_stage
from ..sae import load_sae, save_sae
from ..sae.registry import config_for
from .checkpoint import has_checkpoint
from .config import TrainConfig
from .loop import TrainJob, TrainResult
from .many import train_many


def sae_is_complete(run_dir: Path) -> bool:
    return (run_dir / "sae" / "cfg.json").is_file() and (run_dir / "sae" / "sae_weights.safetensors").is_file()


def train_run(
    run_dir: str | Path,
    sae_cfg: dict | None = None,
    cfg: TrainConfig | None = None,
    *,
    activations: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> TrainResult | None:
    """Train an SAE on the run's store (or `activations`, a store or .npy) and save it
    to RUN/sae in raw units. `sae_cfg` holds SAEConfig fields other than d_in and
    norm_scale (taken from the store). Returns None if RUN/sae is already complete
    with these settings."""
    return train_runs([(run_dir, sae_cfg, cfg)], activations=activations, resume=resume, force=force, progress=progress)[0]


def train_runs(
    runs: list[tuple[str | Path, dict | None, TrainConfig | None]],
    *,
    activations: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    on_done: Callable[[Path, TrainResult], None] | None = None,
) -> list[TrainResult | None]:
    """`train_run` for several (run_dir, sae_cfg, cfg) at once, in one pass over the
    store (`activations`, or the first run's own): the runs share batch size and seed
    (hence the data order) and may differ in everything else. Each run's SAE is saved
    as soon as it has finished; `on_done(run_dir, result)` is called after that."""
    if not runs:
        return []
    store = open_store(activations if activations is not None else runs[0][0])
    jobs, dirs, results = [], [], [None] * len(runs)
    for run_dir, sae_cfg, cfg in runs:
        job = _prepare(Path(run_dir), sae_cfg, cfg or TrainConfig(), store, activations, resume, force)
        if job is not None:
            jobs.append(job)
            dirs.append(Path(run_dir))
    if not jobs:
        return results
    streams = {(j.cfg.batch_size, j.cfg.seed) for j in jobs}
    if len(streams) > 1:
        raise ConfigError(f"runs trained in one pass read the same batches: their (batch size, seed) differ: {sorted(streams)}")
    batch_size, seed = streams.pop()

    def batches(start: int):
        return store.batches(batch_size, split="train", seed=seed, start_batch=start)

    def save(i: int, result: TrainResult) -> None:
        run_dir = dirs[i]
        metadata = {"model_name": store.model, "hook_layer": store.layer,
                    "hook_name": f"blocks.{store.layer}.hook_resid_post" if store.layer is not None else None,
                    "training_tokens": result.tokens}
        save_sae(result.sae, run_dir / "sae", metadata=metadata)
        # latest.pt stays (training can be continued from it); its predecessor is only
        # a safety net while training runs.
        (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
        if on_done is not None:
            on_done(run_dir, result)

    trained = train_many(batches, jobs, progress=progress, on_done=save)
    index = {d: r for d, r in zip(dirs, trained)}
    return [index.get(Path(run_dir)) for run_dir, _, _ in runs]


def _prepare(run_dir: Path, sae_cfg: dict | None, cfg: TrainConfig, store, activations, resume: bool, force: bool) -> TrainJob | None:
    """Record the run's settings and decide what it needs: None when RUN/sae is
    complete, else the job (resuming its checkpoint when asked)."""
    cfg.validate()
    full_cfg = config_for({"architecture": "relu", **(sae_cfg or {}), "d_in": store.d, "norm_scale": store.norm_scale})
    full_cfg.validate()
    settings = {"sae": asdict(full_cfg), "train": cfg.to_dict(), "activations": str(Path(activations).resolve()) if activations else None}
    run_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for stale in ("sae", "checkpoints"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    record_stage(run_dir, "train", settings, replace=force)
    if sae_is_complete(run_dir):
        return None
    has_ckpt = has_checkpoint(run_dir / "checkpoints")
    if has_ckpt and not resume:
        raise ConfigError(f"{run_dir} has a training checkpoint: add --resume to continue it, or --force to start again")
    return TrainJob(full_cfg, cfg, run_dir, resume=resume and has_ckpt)


def load_run_sae(run_dir: str | Path):
    return load_sae(Path(run_dir) / "sae")
