"""The train stage of a run directory: RUN/activations (or a .npy) -> RUN/sae."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from ..activations import open_store
from ..errors import ConfigError
from ..run import Run
from ..sae import save_sae
from ..sae.registry import config_for
from .checkpoint import has_checkpoint
from .config import TrainConfig
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
) -> TrainResult | None:
    """Train an SAE on the run's store (or `activations`, a store or .npy) and save it
    to RUN/sae in raw units. `sae_cfg` holds SAEConfig fields other than d_in and
    norm_scale (taken from the store). Returns None if RUN/sae is already complete
    with these settings."""
    run = Run.of(run)
    run_dir = run.dir
    cfg = cfg or TrainConfig()
    cfg.validate()
    store = open_store(activations if activations is not None else run_dir)
    full_cfg = config_for({"architecture": "relu", **(sae_cfg or {}), "d_in": store.d, "norm_scale": store.norm_scale})
    full_cfg.validate()
    settings = {"sae": asdict(full_cfg), "train": cfg.to_dict(), "activations": str(Path(activations).resolve()) if activations else None}
    run_dir.mkdir(parents=True, exist_ok=True)
    if force:
        for stale in ("sae", "checkpoints"):
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        run.metrics_path.unlink(missing_ok=True)
    run.record("train", settings, replace=force)
    if run.has_sae:
        return None
    if has_checkpoint(run_dir / "checkpoints") and not resume:
        raise ConfigError(f"{run_dir} has a training checkpoint: add --resume to continue it, or --force to start again")

    def batches(start: int):
        return store.batches(cfg.batch_size, split="train", seed=cfg.seed, start_batch=start)

    result = train_sae(batches, full_cfg, cfg, out_dir=run_dir, resume=resume and has_checkpoint(run_dir / "checkpoints"), progress=progress)
    metadata = {"model_name": store.model, "hook_layer": store.layer,
                "hook_name": f"blocks.{store.layer}.hook_resid_post" if store.layer is not None else None,
                "training_tokens": result.tokens}
    save_sae(result.sae, run.sae_dir, metadata=metadata)
    # latest.pt stays (training can be continued from it); its predecessor is only
    # a safety net while training runs.
    (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
    return result

