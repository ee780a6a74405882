"""The training loop: any stream of [B, d] batches in, a trained SAE out.

One loop for every architecture; what differs (loss, decoder constraints, AuxK)
lives in the SAE's `forward`, `before_step` and `after_step`."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from .. import atomic
from ..errors import ConfigError, StoreError, TrainingDiverged
from ..models.dtype import choose_dtype
from ..run import read_metrics
from ..sae import ARCHITECTURES, SAE, SAEConfig
from ..sae.io import to_raw_units
from ..sae.registry import config_for
from .adam import make_adam as _adam
from .config import TrainConfig
from .dead import DeadTracker
from .knobs import current_knobs, resume_with_knobs
from .distributed import Single
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
    x = x.float()   # first: a float16 batch's own sum would overflow at 65,504
    # a sum is finite exactly when every value is (short of a float32 overflow, checked
    # then in full): one pass with no [B, d] mask, 0.3 ms instead of ~4 at [4096, 576]
    if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise StoreError(f"batch at step {step} contains NaN or infinite activations: the store is damaged; harvest again with --force")
    return x


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
    parallel: Single | None = None,
) -> TrainResult:
    """Train an SAE on `batches`: an ActivationStore (its train split, cfg.batch_size
    rows a step), an iterable of float [B, d] tensors such as `store.batches(...)`,
    or a callable giving the stream from a step on. A store or its stream supplies
    its scale s (sae_cfg.norm_scale), so the SAE trains on s·x as the recipe says.
    Returns the SAE in raw units (as `load_sae` gives it) and the tokens it saw.
    With `out_dir`, writes out_dir/metrics.jsonl and out_dir/checkpoints/;
    `resume=True` continues from the latest checkpoint with the same data order.
    `parallel` (train/distributed.py) runs it over ranks: each rank then passes its
    own batches (data parallel: its slice of each) and gets its own part back. The
    one-SAE case of `train_many`."""
    from .many import train_many  # many.py drives SAETrainer from this module

    cfg = cfg or TrainConfig()
    cfg.validate()
    batches, sae_cfg = _with_store_scale(batches, config_for(sae_cfg), cfg)
    result = train_many(batches, [TrainJob(sae_cfg, cfg, out_dir, resume, parallel)], progress=progress)[0]
    if parallel is None:
        result.sae = to_raw_units(result.sae.eval())
    return result


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


@dataclass
class TrainJob:
    """One SAE to train: its architecture, its run settings, where it writes."""
    sae_cfg: SAEConfig
    cfg: TrainConfig
    out_dir: str | Path | None = None   # metrics.jsonl and checkpoints/ go here (None: nothing written)
    resume: bool = False                # continue from out_dir/checkpoints/latest.pt
    parallel: Single | None = None      # how it runs over ranks (train/distributed.py; None: one process)


class SAETrainer:
    """Everything one SAE's training owns: the SAE, its optimiser, schedule, dead
    tracker, metrics log, checkpoints, random state and clock. `step` is called once
    per batch of the (possibly shared) stream, so N trainers can read one stream."""

    def __init__(self, job: TrainJob):
        cfg, sae_cfg = job.cfg, config_for(job.sae_cfg)
        cfg.validate()
        self.cfg, self.sae_cfg = cfg, sae_cfg
        self.dtype = resolve_dtype(cfg.dtype, sae_cfg.architecture)
        self.out_dir = Path(job.out_dir) if job.out_dir is not None else None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir = self.out_dir / "checkpoints" if self.out_dir is not None else None
        self.total = cfg.total_steps
        self.parallel = parallel = job.parallel or Single()

        torch.manual_seed(cfg.seed)
        self.sae = parallel.make_sae(sae_cfg)
        self.optimizer = _adam(self.sae, cfg.lr)
        self.dead = DeadTracker(parallel.local_latents(sae_cfg), cfg.dead_window, device=parallel.device)
        self.start, self.elapsed, self.resumed_from, self.tokens = 0, 0.0, None, 0
        if job.resume and self.ckpt_dir is not None and parallel.has_checkpoint(self.ckpt_dir):
            state = parallel.load_checkpoint(self.ckpt_dir)
            if config_for(state["sae_config"]) != sae_cfg or state["train_config"] != cfg.to_dict():
                raise ConfigError(f"the checkpoint in {self.ckpt_dir} was made with other settings: resume with the same flags, or --force to start again")
            self.sae.load_state_dict(state["sae"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.dead.load_state_dict(state["dead"])
            torch.set_rng_state(state["rng"])
            self.start = self.resumed_from = int(state["step"])
            self.elapsed = float(state.get("elapsed", 0.0))
            self.tokens = int(state.get("tokens", self.start * cfg.batch_size))
            for note in resume_with_knobs(self, state.get("knobs"), self.ckpt_dir):  # the checkpoint's lr scales, dtype, ...
                if parallel.is_main:
                    print(f"monosemantic: note: {note}", file=sys.stderr)
        elif job.resume and self.ckpt_dir is not None:
            raise ConfigError(f"no checkpoint in {self.ckpt_dir} to resume from: run without --resume")
        # Each trainer keeps its own random state, so that training beside others
        # gives the same weights as training alone.
        self.rng = torch.get_rng_state()
        self.metrics = _MetricsLog(self.out_dir / "metrics.jsonl" if self.out_dir is not None and parallel.is_main else None, self.resumed_from)
        self.flops = _flops_before(self.metrics.path, self.start, self._step_flops(cfg.batch_size, 0))
        self.autocast = (lambda: torch.autocast(parallel.device.type, dtype=torch.bfloat16)) if self.dtype == "bfloat16" else contextlib.nullcontext
        self.window = _Window()
        self.last_good = None if self.resumed_from is None else self.ckpt_dir / "latest.pt"
        self.last_record: dict = {}

    @property
    def step_cost(self) -> int:
        """FLOPs of one step at the configured batch (for ordering concurrent steps)."""
        return self._step_flops(self.cfg.batch_size, 0)

    def _step_flops(self, batch: int, n_dead: int) -> int:
        # from the architecture's class: a feature-sharded `sae` is a wrapper of its slice
        return ARCHITECTURES[self.sae_cfg.architecture].step_flops(self.sae_cfg, batch, n_dead).total

    @property
    def needs_init(self) -> bool:
        return self.resumed_from is None

    def init_from_data(self, first: torch.Tensor) -> None:
        torch.set_rng_state(self.rng)
        self.sae.init_from_data(self.parallel.global_batch(first.to(self.parallel.device)))
        self.rng = torch.get_rng_state()

    def checkpoint(self, step: int) -> Path | None:
        if self.ckpt_dir is None:
            return None
        return self.parallel.save_checkpoint(self.ckpt_dir, {
            "step": step, "sae_config": asdict(self.sae_cfg), "train_config": self.cfg.to_dict(), "sae": self.sae.state_dict(),
            "optimizer": self.optimizer.state_dict(), "dead": self.dead.state_dict(), "rng": self.rng,
            "elapsed": self.elapsed, "tokens": self.tokens, "knobs": current_knobs(self),
        })

    def step(self, step: int, x: torch.Tensor, shared_seconds: float = 0.0, own_rng: bool = True) -> None:
        """One optimiser step on batch `x` (already checked); `shared_seconds` is this
        trainer's share of the time spent reading the batch. `own_rng=False` leaves the
        global generator alone (concurrent steps on threads; train/concurrent.py)."""
        t0 = time.perf_counter()
        if own_rng:
            torch.set_rng_state(self.rng)
        x = x.to(self.parallel.device)  # itself on the CPU; cuda:LOCAL_RANK under NCCL
        cfg, sae, optimizer, dead, total, parallel = self.cfg, self.sae, self.optimizer, self.dead, self.total, self.parallel
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * lr_factor(step, total, cfg.lr_warmup_fraction, cfg.lr_decay_fraction)
        with self.autocast():
            out = sae(x, sparsity_scale=sparsity_factor(step, total, cfg.sparsity_warmup_fraction), dead_mask=dead.mask)
        loss = out.loss.float()
        if not torch.isfinite(loss):
            where = f"the last good checkpoint is {self.last_good} (resume with --resume and a lower --lr)" if self.last_good else "no checkpoint was written yet"
            raise TrainingDiverged(f"loss became {loss.item()} at step {step}: {where}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sae.before_step()
        parallel.sync_and_clip(sae, cfg.grad_clip)
        optimizer.step()
        sae.after_step()
        rows = parallel.global_rows(x.shape[0])
        self.flops += self._step_flops(rows, parallel.dead_count(dead))
        dead.update(parallel.fired(out.fired), rows)
        self.tokens += rows                     # what the stream gave, whatever its batch size
        self.window.add(x, out, loss)
        if own_rng:
            self.rng = torch.get_rng_state()
        self.elapsed += time.perf_counter() - t0 + shared_seconds

        done = step + 1
        if done % cfg.log_every == 0 or done == total:
            record = {"step": done, "tokens": self.tokens, **self.window.flush(parallel), "dead_fraction": parallel.dead_fraction(dead),
                      "dead_window_tokens": dead.window, "lr": optimizer.param_groups[0]["lr"],
                      "sparsity_scale": sparsity_factor(step, total, cfg.sparsity_warmup_fraction),
                      "elapsed_s": round(self.elapsed, 3), "flops": self.flops}
            self.metrics.write(record)
            self.last_record = record
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < total:
            self.last_good = self.checkpoint(done)

    def finish(self) -> TrainResult:
        if not self.last_record and self.metrics.path is not None:  # resumed at its final step: nothing new was logged
            logged = read_metrics(self.metrics.path)
            self.last_record = logged[-1] if logged else {}
        self.checkpoint(self.total)
        if self.parallel.device.type != "cpu":  # saved and evaluated on the CPU
            self.sae = self.sae.cpu()
        return TrainResult(self.sae, self.total, self.tokens, self.elapsed, self.last_record, self.resumed_from)


class _Window:
    """Per-step metric sums between two log lines. The FVE's denominator needs each
    step's batch mean over all ranks, so each rank keeps, per step, its rows' squared
    deviation from their own mean, ‖Σx‖²/rows and Σx (float64), combined at flush
    (after summing over data-parallel ranks: one reduction per log line):
        Σ‖x − mean‖² = Σᵣ devᵣ + Σᵣ ‖Σxᵣ‖²/nᵣ − ‖Σx‖²/n.
    Summing in float32 from the rank's own mean never cancels (Σ‖x‖² − n‖mean‖²
    would, on residual streams with a large mean), and casting the whole batch to
    float64 instead cost ~35 ms a step at [4096, 576], a tenth of a TopK step."""

    def __init__(self):
        self.steps: list[torch.Tensor] = []  # each [4 + t + d] float64: err, dev, rows, ‖Σx‖²/rows, ..., Σx
        self.names: list[str] = []

    @torch.no_grad()
    def add(self, x: torch.Tensor, out, loss: torch.Tensor) -> None:
        rows = x.shape[0]
        values = {"loss": loss.detach().float() * rows, "l0": out.n_active.float().sum()}
        values.update({name: term.detach().float() * rows for name, term in out.terms.items()})
        self.names = list(values)
        x32 = x.float()
        err = (x32 - out.x_hat.float()).pow(2).sum()
        mean = x32.mean(0)                                                 # [d]
        centred = x32 - mean
        dev = centred.pow(2).sum()
        # Σx as rows·mean + Σ(x − mean): exact to the spread's scale, not the mean's
        # (a float32 column sum would cancel in the ranks' combination), and cheaper
        # than a float64 reduction
        col_sums = rows * mean.double() + centred.sum(0).double()          # [d]
        head = torch.stack([err.double(), dev.double(), torch.tensor(float(rows), dtype=torch.float64, device=x.device),
                            col_sums.pow(2).sum() / rows])
        self.steps.append(torch.cat([head, torch.stack(list(values.values())).double(), col_sums]))

    def flush(self, parallel=None) -> dict:
        stacked = torch.stack(self.steps)                                  # [steps, 4 + t + d]
        if parallel is not None:
            stacked = parallel.sum_metrics_(stacked)
        t = len(self.names)
        err, dev, rows, own_means = stacked[:, 0], stacked[:, 1], stacked[:, 2], stacked[:, 3]
        sq_dev = float((dev + own_means - stacked[:, 4 + t :].pow(2).sum(1) / rows).sum())
        record = {name: float((stacked[:, 4 + i] / rows).mean()) for i, name in enumerate(self.names)}
        record["fve"] = 1.0 - float(err.sum()) / sq_dev if sq_dev > 0 else float("nan")
        self.__init__()
        return record
