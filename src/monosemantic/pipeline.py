"""The main job over one run directory: every stage in order, each resumed or
skipped when already done, one model load shared by all of them. With several
ranks (`pipeline --nproc N`, or torchrun) the harvest and train stages run on the
ranks (`run_distributed_stages`) and the rest in one process (`run_pipeline`, which
then finds those two done)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .activations.run import harvest_run
from .distributed import World
from .evals.run import evaluate_run, format_table
from .autointerp import label_features
from .features import build_feature_db
from .report import build_report
from .run import Run
from .train import TrainConfig, train_run

# The bar for the default SAE on the embedded model (the paper's FVE bar).
TARGETS = {"fve": (">=", 0.65), "l0": ("<=", 64.0), "dead_fraction": ("<", 0.10), "loss_recovered": (">=", 0.80)}


@dataclass
class PipelineSettings:
    model: str = "embedded"
    layer: int | None = None
    n_tokens: int = 300_000
    ctx_len: int = 128
    inputs: list[str] | None = None
    dtype: str = "auto"
    seed: int = 0
    sae: dict = field(default_factory=lambda: {"architecture": "relu", "n_latents": 4096})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_tokens: int = 50_000
    feature_tokens: int | None = None  # None: the feature database covers the whole store
    features: bool = True


@dataclass
class PipelineSummary:
    run_dir: Path
    seconds: dict[str, float]
    eval: dict
    checks: dict[str, bool]

    def text(self) -> str:
        lines = [format_table(self.eval), "", "stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())]
        for key, ok in self.checks.items():
            op, bar = TARGETS[key]
            lines.append(f"  {'ok  ' if ok else 'MISS'} {key} {self.eval.get(key, float('nan')):.4g} (target {op} {bar})")
        lines.append(f"results in {self.run_dir}: sae/, eval.json, metrics.jsonl"
                     + (", features.db, report/index.html" if (self.run_dir / "report" / "index.html").is_file() else ""))
        return "\n".join(lines)


def check_targets(result: dict) -> dict[str, bool]:
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
    return {k: k in result and ops[op](result[k], bar) for k, (op, bar) in TARGETS.items()}


def _eval_is_current(run: Run) -> bool:
    eval_path, sae_cfg = run.dir / "eval.json", run.sae_dir / "cfg.json"
    return eval_path.is_file() and sae_cfg.is_file() and eval_path.stat().st_mtime >= sae_cfg.stat().st_mtime


def discard_run(run_dir: str | Path) -> None:
    """--force: everything in RUN goes."""
    run = Run(run_dir)
    if run.dir.exists():
        shutil.rmtree(run.dir)


def run_distributed_stages(run_dir: str | Path, settings: PipelineSettings, world: World, parallel: str = "data", *,
                           feature_ranks: int | None = None, force: bool = False, progress: bool = True) -> None:
    """Harvest and train on this rank of `world`, as `harvest|train --nproc N` do
    (training always resumes its checkpoint, as in `run_pipeline`)."""
    s = settings
    run = Run(run_dir)
    if force and world.is_main:
        discard_run(run.dir)
    world.barrier()
    lm = run.load_model(s.dtype, spec=s.model, device=str(world.device))
    harvest_run(run, model=s.model, layer=s.layer, n_tokens=s.n_tokens, ctx_len=s.ctx_len, inputs=s.inputs, dtype=s.dtype,
                seed=s.seed, lm=lm, progress=progress, world=world)
    del lm  # training needs no language model
    train_run(run, s.sae, s.train, resume=True, progress=progress, world=world, parallel=parallel, feature_ranks=feature_ranks)


def run_pipeline(run_dir: str | Path, settings: PipelineSettings | None = None, *, force: bool = False, progress: bool = True,
                 earlier: dict[str, float] | None = None) -> PipelineSummary:
    """Every stage in one process; `earlier` holds the seconds of stages already run
    elsewhere (on ranks), which the summary and pipeline.json report first."""
    s = settings or PipelineSettings()
    run = Run(run_dir)
    if force:
        discard_run(run.dir)
    seconds: dict[str, float] = dict(earlier or {})

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - start
        print(f"[{name}] done in {seconds[name]:.0f} s", flush=True)
        return out

    lm = timed("load model", lambda: run.load_model(s.dtype, spec=s.model))
    timed("corpus + harvest", lambda: harvest_run(run, model=s.model, layer=s.layer, n_tokens=s.n_tokens, ctx_len=s.ctx_len,
                                                  inputs=s.inputs, dtype=s.dtype, seed=s.seed, lm=lm, progress=progress))
    timed("train", lambda: train_run(run, s.sae, s.train, resume=True, progress=progress))
    if _eval_is_current(run):
        result = run.eval_result()
    else:
        result = timed("eval", lambda: evaluate_run(run, lm=lm, n_tokens=s.eval_tokens, progress=progress))
    if s.features:
        timed("features", lambda: build_feature_db(run, lm=lm, n_tokens=s.feature_tokens, progress=progress))
        timed("labels", lambda: label_features(run.dir, progress=progress))
        timed("report", lambda: build_report(run))
    checks = check_targets(result)
    atomic.write_json(run.dir / "pipeline.json", {"seconds": seconds, "targets": {k: list(v) for k, v in TARGETS.items()}, "met": checks})
    return PipelineSummary(run.dir, seconds, result, checks)
