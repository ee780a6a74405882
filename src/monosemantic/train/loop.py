"""The training loop: any stream of [B, d] batches in, a trained SAE out.

One loop for every architecture; what differs (loss, decoder constraints, AuxK)
lives in the SAE's `forward`, `before_step` and `after_step`."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from ..progress import progress_bar

from .. import atomic
from ..errors import ConfigError, StoreError, TrainingDiverged
from ..models.dtype import choose_dtype
from ..run import read_metrics
from ..sae import ARCHITECTURES, SAE, SAEConfig, make_sae
from ..sae.io import to_raw_units
from ..sae.registry import config_for
from .checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .dead import DeadTracker
from .schedules import lr_factor, sparsity_factor

Batches = Iterable[torch.Tensor] | Callable[[int], Iterable[torch.Tensor]]


@dataclass
class TrainResult:
    sae: SAE
    steps: int
    tokens: int
    seconds: float
    last_metrics: dict = field(default_factory=dict)
    resumed_from: int | None = None


# benchmarks/train_throughput.py, d 576, 16,384 latents, batch 4,096, this project's CPUs
# (native bf16), unloaded machine: bfloat16 autocast ran TopK x1.38–1.45 and ReLU
# x1.55–1.77 faster, final loss 0.01–0.04 % from float32. On the main job's store the
# default relu SAE trained in 161 s vs 211 s with the same FVE (0.7525), L0 and loss
# recovered (97.43 % vs 97.41 %). (An earlier run on a machine at load ~8 had ReLU
# x0.65: an overloaded machine can invert it; pass --train-dtype float32 there.)
# JumpReLU's thresholds were not measured in bfloat16: it stays float32. Each SAE
# class says which it is (`SAE.bf16_safe`).


def _adam(sae, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for these parameters (the same
    update): measured on CPU at 16,384 x 576, ~40 ms per optimiser step, and a whole
    training step 3-4 % faster than with the per-tensor Adam."""
    kwargs = dict(lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
    try:
        return torch.optim.Adam(sae.param_groups(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(sae.param_groups(), **kwargs)


def resolve_dtype(name: str, architecture: str) -> str:
    """`auto`: bfloat16 autocast where it was measured faster at float32's loss, else float32."""
    if name != "auto":
        return name
    native_bf16 = choose_dtype("auto").dtype == torch.bfloat16
    return "bfloat16" if native_bf16 and ARCHITECTURES[architecture].bf16_safe else "float32"


def _stream(batches: Batches, start: int) -> Iterator[torch.Tensor]:
    """Batches from step `start` on: a callable is asked for them (it can seek), a
    plain iterable is replayed and the first `start` batches skipped."""
    if callable(batches):
        return iter(batches(start))
    return itertools.islice(iter(batches), start, None)


def _check_batch(x: torch.Tensor, d: int, step: int) -> torch.Tensor:
    if x.ndim != 2 or x.shape[1] != d:
        raise StoreError(f"batch at step {step} has shape {tuple(x.shape)}, expected [B, {d}]")
    if not torch.isfinite(x).all():
        raise StoreError(f"batch at step {step} contains NaN or infinite activations: the store is damaged; harvest again with --force")
    return x.float()


class _MetricsLog:
    """metrics.jsonl, appended line by line; on resume the lines past the checkpoint
    are dropped (they will be logged again)."""

    def __init__(self, path: Path | None, resume_step: int | None):
        self.path = path
        if path is None:
            return
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.is_file():
            kept = [line for line in path.read_text(errors="replace").splitlines() if _step_of(line) <= resume_step]
            atomic.write_bytes(path, "".join(line + "\n" for line in kept).encode())

    def write(self, record: dict) -> None:
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn last line: drop it


def _flops_before(path: Path | None, start: int, per_step: int) -> int:
    """Cumulative FLOPs at step `start` of a resumed run: the last kept log line's
    count, plus dense-part steps for any steps logged after it."""
    if path is None or start == 0 or not path.is_file():
        return start * per_step
    logged = [r for r in read_metrics(path) if "flops" in r and "step" in r]
    last = logged[-1] if logged else {"step": 0, "flops": 0}
    return int(last["flops"]) + (start - int(last["step"])) * per_step


def train_sae(
    batches: Batches,
    sae_cfg: SAEConfig,
    cfg: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train an SAE on `batches`: an ActivationStore (its train split, cfg.batch_size
    rows a step), an iterable of float [B, d] tensors such as `store.batches(...)`,
    or a callable giving the stream from a step on. A store or its stream supplies
    its scale s (sae_cfg.norm_scale), so the SAE trains on s·x as the recipe says.
    Returns the SAE in raw units (as `load_sae` gives it) and the tokens it saw.
    With `out_dir`, writes out_dir/metrics.jsonl and out_dir/checkpoints/;
    `resume=True` continues from the latest checkpoint with the same data order."""
    cfg = cfg or TrainConfig()
    cfg.validate()
    batches, sae_cfg = _with_store_scale(batches, config_for(sae_cfg), cfg)
    dtype = resolve_dtype(cfg.dtype, sae_cfg.architecture)
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints" if out_dir is not None else None
    total = cfg.total_steps

    torch.manual_seed(cfg.seed)
    sae = make_sae(sae_cfg)
    step_flops = lambda batch, n_dead: type(sae).step_flops(sae_cfg, batch, n_dead).total  # noqa: E731
    optimizer = _adam(sae, cfg.lr)
    dead = DeadTracker(sae_cfg.n_latents, cfg.dead_window)
    start, elapsed_before, resumed_from, tokens_before = 0, 0.0, None, 0

    if resume and ckpt_dir is not None and has_checkpoint(ckpt_dir):
        state = load_checkpoint(ckpt_dir)
        if config_for(state["sae_config"]) != sae_cfg or state["train_config"] != cfg.to_dict():
            raise ConfigError(f"the checkpoint in {ckpt_dir} was made with other settings: resume with the same flags, or --force to start again")
        sae.load_state_dict(state["sae"])
        optimizer.load_state_dict(state["optimizer"])
        dead.load_state_dict(state["dead"])
        torch.set_rng_state(state["rng"])
        start = resumed_from = int(state["step"])
        tokens_before = int(state.get("tokens", start * cfg.batch_size))
        elapsed_before = float(state.get("elapsed", 0.0))
    elif resume and ckpt_dir is not None:
        raise ConfigError(f"no checkpoint in {ckpt_dir} to resume from: run without --resume")

    metrics = _MetricsLog(out_dir / "metrics.jsonl" if out_dir is not None else None, resumed_from)
    flops = _flops_before(metrics.path, start, step_flops(cfg.batch_size, 0))
    stream = source = _stream(batches, start)
    if resumed_from is None:
        first = _check_batch(next(stream), sae_cfg.d_in, 0)
        sae.init_from_data(first)
        stream = itertools.chain([first], stream)

    def checkpoint(step: int) -> Path | None:
        if ckpt_dir is None:
            return None
        return save_checkpoint(ckpt_dir, {
            "step": step, "sae_config": asdict(sae_cfg), "train_config": cfg.to_dict(), "sae": sae.state_dict(),
            "optimizer": optimizer.state_dict(), "dead": dead.state_dict(), "rng": torch.get_rng_state(),
            "elapsed": elapsed_before + time.perf_counter() - t0, "tokens": tokens,
        })

    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bfloat16" else contextlib.nullcontext
    bar = progress_bar(total=total, initial=start, enabled=progress, unit="step", desc=f"train {sae_cfg.architecture}", dynamic_ncols=True)
    window = _Window()
    t0 = time.perf_counter()
    last_good = None if resumed_from is None else ckpt_dir / "latest.pt"
    last_record: dict = {}
    step, tokens = start, tokens_before
    try:
        for step in range(start, total):
            try:
                x = _check_batch(next(stream), sae_cfg.d_in, step)
            except StopIteration:
                raise StoreError(f"the batch stream ended after {step} steps; {total} were planned (--train-tokens {cfg.n_tokens})") from None
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * lr_factor(step, total, cfg.lr_warmup_fraction, cfg.lr_decay_fraction)
            with autocast():
                out = sae(x, sparsity_scale=sparsity_factor(step, total, cfg.sparsity_warmup_fraction), dead_mask=dead.mask)
            loss = out.loss.float()
            if not torch.isfinite(loss):
                where = f"the last good checkpoint is {last_good} (resume with --resume and a lower --lr)" if last_good else "no checkpoint was written yet"
                raise TrainingDiverged(f"loss became {loss.item()} at step {step}: {where}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            sae.before_step()
            torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
            optimizer.step()
            sae.after_step()
            flops += step_flops(x.shape[0], int(dead.mask.sum()))
            dead.update(out.fired, x.shape[0])
            tokens += x.shape[0]                    # what the stream gave, whatever its batch size
            window.add(x, out, loss)

            done = step + 1
            if done % cfg.log_every == 0 or done == total:
                record = {"step": done, "tokens": tokens, **window.flush(), "dead_fraction": dead.fraction,
                          "dead_window_tokens": dead.window, "lr": optimizer.param_groups[0]["lr"],
                          "sparsity_scale": sparsity_factor(step, total, cfg.sparsity_warmup_fraction),
                          "elapsed_s": round(elapsed_before + time.perf_counter() - t0, 3), "flops": flops}
                metrics.write(record)
                last_record = record
                bar.set_postfix(loss=f"{record['loss']:.3g}", L0=f"{record['l0']:.1f}", FVE=f"{record['fve']:.3f}", dead=f"{record['dead_fraction']:.1%}", refresh=False)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < total:
                last_good = checkpoint(done)
            bar.update(1)
    finally:
        bar.close()
        for stream_given in (source, batches):  # stop a loader's prefetch thread now, not at interpreter exit
            if hasattr(stream_given, "close"):
                stream_given.close()
    if not last_record and metrics.path is not None:  # resumed at its final step: nothing new was logged
        logged = read_metrics(metrics.path)
        last_record = logged[-1] if logged else {}
    checkpoint(total)
    return TrainResult(to_raw_units(sae.eval()), total, tokens, elapsed_before + time.perf_counter() - t0, last_record, resumed_from)


def _with_store_scale(batches, sae_cfg: SAEConfig, cfg: TrainConfig):
    """-> (batches, sae_cfg with the scale of the store or stream given, if any)."""
    from ..activations import ActivationStore

    scale = getattr(batches, "norm_scale", None)
    if isinstance(batches, ActivationStore):
        store = batches
        batches = lambda start: store.batches(cfg.batch_size, split="train", seed=cfg.seed, start_batch=start)  # noqa: E731
    if scale is None or sae_cfg.norm_scale == scale:
        return batches, sae_cfg
    if sae_cfg.norm_scale != 1.0:
        raise ConfigError(f"SAEConfig.norm_scale={sae_cfg.norm_scale} but the store scales its batches by {scale}: "
                          "leave norm_scale at its default when training on a store")
    return batches, replace(sae_cfg, norm_scale=float(scale))


class _Window:
    """Running sums of the per-step metrics between two log lines."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.sq_err = self.sq_dev = 0.0
        self.n = 0

    @torch.no_grad()
    def add(self, x: torch.Tensor, out, loss: torch.Tensor) -> None:
        err = (x - out.x_hat.float()).pow(2).sum().item()
        dev = (x - x.mean(0)).pow(2).sum().item()
        self.sq_err += err
        self.sq_dev += dev
        values = {"loss": loss.item(), "l0": out.n_active.float().mean().item()}
        values.update({name: float(term) for name, term in out.terms.items()})
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def flush(self) -> dict:
        record = {k: v / self.n for k, v in self.sums.items()}
        record["fve"] = 1.0 - self.sq_err / self.sq_dev if self.sq_dev > 0 else float("nan")
        self.__init__()
        return record
