"""The train stage of a run directory: RUN/activations (or a .npy) -> RUN/sae."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from ..activations import open_store
from ..errors import ConfigError
from ..preflight import check_disk, check_duration, check_memory
from ..run import Run
from ..sae import SAEConfig, save_sae
from ..sae.registry import ARCHITECTURES, config_for
from ..interop.metadata import run_metadata
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
    preflight(full_cfg, cfg, run_dir)
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
    metadata = run_metadata(store, run.data_root) | {"training_tokens": result.tokens}
    save_sae(result.sae, run.sae_dir, metadata=metadata)
    # latest.pt stays (training can be continued from it); its predecessor is only
    # a safety net while training runs.
    (run_dir / "checkpoints" / "previous.pt").unlink(missing_ok=True)
    return result


def preflight(sae_cfg: SAEConfig, cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a training run that cannot fit in memory or on disk, or cannot finish."""
    params = 2 * sae_cfg.d_in * sae_cfg.n_latents + sae_cfg.n_latents + sae_cfg.d_in
    # float32 weights, gradients and two Adam moments, plus a few [batch, n] activations
    memory = 16 * params + 4 * 4 * cfg.batch_size * sae_cfg.n_latents
    what = f"an SAE of {sae_cfg.n_latents:,} latents on d={sae_cfg.d_in}"
    check_memory(memory, what, "--latents or --batch-size")
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

