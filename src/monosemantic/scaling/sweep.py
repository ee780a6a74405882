"""A sweep: many training runs over one shared store, each a normal run directory
SWEEP/runs/NAME, each scored on the same held-out sample.

SPEC is a JSON file:

    {"activations": "/path/to/store",          # one store for every run
     "architecture": "relu", "l1_coefficient": 3.0,   # defaults for every run (or "k")
     "batch_size": 1024, "lr": 0.001,
     "eval_tokens": 8192, "eval_seed": 0,      # the held-out sample every run is scored on
     "grid": {"n_latents": [256, 512], "n_tokens": [50000, 100000]},
     "runs": [{"n_latents": 1024, "n_tokens": 200000}]}   # extra runs (optional)

Runs are trained sequentially in this process (--jobs 1) or N at a time in worker
processes; a run with RUN/scaling_eval.json is finished and skipped, one with a
checkpoint is resumed, so the same command continues an interrupted sweep.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .. import atomic
from ..errors import ConfigError
from ..sae import ARCHITECTURES
from .flops import run_flops

SWEEP_FILE = "sweep.json"
EVAL_FILE = "scaling_eval.json"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep. There is one field per sparsity knob of the registered
    architectures (`SAE.sparsity_knob`; a test holds them equal), defaults SAEConfig's;
    a run uses only its architecture's knob."""
    architecture: str          # a name in sae.ARCHITECTURES
    n_latents: int             # dictionary size N
    n_tokens: int              # training tokens T
    l1_coefficient: float = 3.0  # relu λ (fixed across a sweep)
    k: int = 32                # topk family: active latents (fixed across a sweep)
    l0_coefficient: float = 1.0  # jumprelu L0 penalty (fixed across a sweep)

    @property
    def knob(self) -> str:
        return ARCHITECTURES[self.architecture].sparsity_knob

    @property
    def knob_value(self) -> float:
        return getattr(self, self.knob)

    @property
    def name(self) -> str:
        label = ARCHITECTURES[self.architecture].knob_label
        return f"{self.architecture}-n{self.n_latents}-t{self.n_tokens}-{label}{self.knob_value:g}"

    def sae_cfg(self) -> dict:
        return {"architecture": self.architecture, "n_latents": self.n_latents, self.knob: self.knob_value}


KNOBS = tuple(f.name for f in fields(RunSpec)[3:])
RUN_KEYS = ("architecture", "n_latents", "n_tokens", *KNOBS)


@dataclass
class SweepSpec:
    activations: str           # the one store every run trains on
    runs: list[RunSpec]
    batch_size: int = 1024
    lr: float = 1e-3
    eval_tokens: int = 8192    # size of the held-out sample every run is scored on
    eval_seed: int = 0
    seed: int = 0              # training seed (init and data order) of every run
    extra: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """What must be equal for runs to compare like with like."""
        return {"activations": str(Path(self.activations).resolve()), "batch_size": self.batch_size, "lr": self.lr,
                "eval_tokens": self.eval_tokens, "eval_seed": self.eval_seed, "seed": self.seed}

    def to_dict(self) -> dict:
        return {**self.identity(), "runs": [asdict(r) for r in self.runs]}


SPEC_KEYS = ("activations", "architecture", *KNOBS, "batch_size", "lr", "eval_tokens", "eval_seed", "seed", "grid", "runs")
_TYPES = {"architecture": str, "n_latents": int, "n_tokens": int, "k": int, "batch_size": int, "eval_tokens": int,
          "eval_seed": int, "seed": int, "l1_coefficient": (int, float), "l0_coefficient": (int, float),
          "lr": (int, float), "activations": str}


def _check_types(where: str, values: dict) -> None:
    for key, value in values.items():
        want = _TYPES.get(key)
        if want is not None and (isinstance(value, bool) or not isinstance(value, want)):
            kind = {int: "an integer", str: "a string"}.get(want, "a number")
            raise ConfigError(f"sweep spec: {where}{key} must be {kind}, got {value!r}")


def parse_spec(data: dict, base: Path | None = None) -> SweepSpec:
    """A spec dict (the JSON file's content) -> SweepSpec, validated."""
    if not isinstance(data, dict) or "activations" not in data:
        raise ConfigError("sweep spec: a JSON object with \"activations\" (a store path) and \"grid\" or \"runs\" is needed")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"sweep spec: unknown key(s) {unknown}; known keys are {list(SPEC_KEYS)}")
    _check_types("", {k: v for k, v in data.items() if k not in ("grid", "runs")})
    activations = Path(data["activations"])
    if base is not None and not activations.is_absolute():
        activations = base / activations
    defaults = {k: data[k] for k in ("architecture", *KNOBS) if k in data}
    defaults.setdefault("architecture", "relu")
    runs: list[dict] = []
    grid = data.get("grid")
    if grid:
        if not isinstance(grid, dict) or any(k not in RUN_KEYS or not isinstance(v, list) for k, v in grid.items()):
            raise ConfigError(f"sweep spec: \"grid\" maps some of {RUN_KEYS} to lists")
        keys = list(grid)
        runs += [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    for run in data.get("runs") or []:
        if not isinstance(run, dict) or any(k not in RUN_KEYS for k in run):
            raise ConfigError(f"sweep spec: each entry of \"runs\" is an object with keys among {RUN_KEYS}")
        runs.append(run)
    if not runs:
        raise ConfigError("sweep spec: no runs (give \"grid\" or \"runs\")")
    specs: list[RunSpec] = []
    for run in runs:
        _check_types(f"run {run}: ", run)
        merged = {**defaults, **run}
        if "n_latents" not in merged or "n_tokens" not in merged:
            raise ConfigError(f"sweep spec: run {run} needs n_latents and n_tokens")
        if merged["architecture"] not in ARCHITECTURES:
            raise ConfigError(f"sweep spec: architecture must be one of {list(ARCHITECTURES)}, got {merged['architecture']!r}")
        spec = RunSpec(**merged)
        if spec.n_latents <= 0 or spec.n_tokens <= 0:
            raise ConfigError(f"sweep spec: run {run}: n_latents and n_tokens must be positive")
        if spec not in specs:
            specs.append(spec)
    s = SweepSpec(str(activations), specs, **{k: data[k] for k in ("batch_size", "lr", "eval_tokens", "eval_seed", "seed") if k in data})
    if s.batch_size <= 0 or s.eval_tokens <= 0 or not 0 < s.lr <= 1:
        raise ConfigError("sweep spec: batch_size and eval_tokens must be positive and lr in (0, 1]")
    if any(r.n_tokens < s.batch_size for r in s.runs):
        raise ConfigError(f"sweep spec: every run needs n_tokens ≥ batch_size ({s.batch_size})")
    fixed = {(r.architecture, r.knob, r.knob_value) for r in s.runs}
    if len(fixed) > 1:
        raise ConfigError(f"sweep spec: a scaling sweep fixes the architecture and its sparsity knob; this one mixes {sorted(fixed)}")
    return s


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read sweep spec {path}: {e}") from e
    return parse_spec(data, path.parent)


def read_sweep(sweep_dir: str | Path) -> SweepSpec:
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE}): run `monosemantic sweep SPEC --out {sweep_dir}` first")
    data = json.loads(path.read_text())
    return SweepSpec(data["activations"], [RunSpec(**r) for r in data["runs"]],
                     **{k: data[k] for k in ("batch_size", "lr", "eval_tokens", "eval_seed", "seed")})


def prepare(sweep_dir: str | Path, spec: SweepSpec) -> None:
    """Write SWEEP/sweep.json, refusing a sweep directory made for another store or
    eval sample (its runs would not compare with the new ones). New runs may be
    added to an existing sweep."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SWEEP_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        diffs = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in spec.identity().items() if old.get(k) != v]
        if diffs:
            raise ConfigError(f"{sweep_dir} holds a sweep with other shared settings ({'; '.join(diffs)}): "
                              "its runs would not compare like with like; use another sweep directory")
        known = [RunSpec(**r) for r in old["runs"]]
        spec = SweepSpec(spec.activations, known + [r for r in spec.runs if r not in known], spec.batch_size,
                         spec.lr, spec.eval_tokens, spec.eval_seed, spec.seed)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, spec.to_dict())


def run_dir(sweep_dir: str | Path, run: RunSpec) -> Path:
    return Path(sweep_dir) / "runs" / run.name


def is_finished(sweep_dir: str | Path, run: RunSpec) -> bool:
    return (run_dir(sweep_dir, run) / EVAL_FILE).is_file()


# --- one run ---------------------------------------------------------------------
def penalty_coefficient(sae_cfg: dict) -> tuple[str | None, float]:
    """(term, coefficient) of the sparsity penalty the scaling loss adds to the MSE:
    the paper's λ·Σ fᵢ‖W_dec,i‖ for relu; nothing for the topk family (fixed k)."""
    cls = ARCHITECTURES[sae_cfg["architecture"]]
    if cls.penalty_term is None:
        return None, 0.0
    return cls.penalty_term, float(sae_cfg[cls.sparsity_knob])


@torch.no_grad()
def evaluate_checkpoint(run: Path, x: torch.Tensor, chunk: int = 4096) -> dict:
    """Score the trained SAE (the final checkpoint, in training units) on x [N, d]
    (scaled store rows): MSE, penalty, scaling loss, L0 and FVE."""
    from ..sae import make_sae
    from ..sae.registry import config_for
    from ..train.checkpoint import load_checkpoint

    state = load_checkpoint(run / "checkpoints")
    sae_cfg = state["sae_config"]
    sae = make_sae(config_for(sae_cfg))
    sae.load_state_dict(state["sae"])
    sae.eval()
    term, coefficient = penalty_coefficient(sae_cfg)
    sums = {"mse": 0.0, "penalty": 0.0, "l0": 0.0, "sq_err": 0.0}
    for part in x.split(chunk):
        out = sae(part)
        n = part.shape[0]
        sums["mse"] += float(out.terms["mse"]) * n
        if term is not None and term in out.terms:
            sums["penalty"] += float(out.terms[term]) * n
        sums["l0"] += float(out.n_active.float().sum())
        sums["sq_err"] += float((part - out.x_hat.float()).pow(2).sum())
    N = x.shape[0]
    mse, penalty = sums["mse"] / N, sums["penalty"] / N
    total_var = float((x - x.mean(0)).pow(2).sum())
    return {"mse": mse, "penalty": penalty, "penalty_term": term, "penalty_coefficient": coefficient,
            "loss": mse + coefficient * penalty, "l0": sums["l0"] / N, "fve": 1 - sums["sq_err"] / total_var}


def last_metrics(run: Path) -> dict:
    path = run / "metrics.jsonl"
    last: dict = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                last = json.loads(line)
            except ValueError:
                pass
    return last


def train_and_score(sweep_dir: str | Path, spec: SweepSpec, run: RunSpec, threads: int | None = None) -> dict:
    """Train one run (resuming it if it has a checkpoint) and write RUN/scaling_eval.json."""
    from ..activations import open_store
    from ..train import TrainConfig, train_run

    if threads:
        torch.set_num_threads(threads)
    out = run_dir(sweep_dir, run)
    cfg = TrainConfig(n_tokens=run.n_tokens, batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed)
    train_run(out, run.sae_cfg(), cfg, activations=spec.activations, resume=True, progress=False)
    store = open_store(spec.activations)
    x = store.sample(spec.eval_tokens, split="heldout", seed=spec.eval_seed)   # [N, d], scaled units
    scores = evaluate_checkpoint(out, x)
    m = last_metrics(out)
    steps = run.n_tokens // spec.batch_size
    result = {**asdict(run), "name": run.name, **scores, "d": store.d, "steps": steps,
              "tokens": steps * spec.batch_size,
              "flops": m.get("flops") or run_flops(run.architecture, store.d, run.n_latents, spec.batch_size, run.n_tokens, run.k),
              "elapsed_s": m.get("elapsed_s"), "dead_fraction": m.get("dead_fraction"),
              "eval": {"activations": spec.identity()["activations"], "eval_tokens": x.shape[0], "eval_seed": spec.eval_seed}}
    atomic.write_json(out / EVAL_FILE, result)
    return result


# --- the sweep ---------------------------------------------------------------------
class _Progress:
    """One bar over the steps of every run, fed by polling their metrics.jsonl."""

    def __init__(self, sweep_dir: Path, runs: list[RunSpec], batch_size: int, enabled: bool):
        from tqdm import tqdm

        self.sweep_dir, self.runs, self.batch_size = sweep_dir, runs, batch_size
        total = sum(r.n_tokens // batch_size for r in runs)
        self.bar = tqdm(total=total, unit="step", desc="sweep", disable=not enabled, dynamic_ncols=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.enabled = enabled

    def _done_steps(self) -> tuple[int, int]:
        steps = finished = 0
        for r in self.runs:
            if is_finished(self.sweep_dir, r):
                steps += r.n_tokens // self.batch_size
                finished += 1
            else:
                steps += int(last_metrics(run_dir(self.sweep_dir, r)).get("step", 0))
        return steps, finished

    def _loop(self) -> None:
        while not self.stop.wait(2.0):
            self.refresh()

    def refresh(self) -> None:
        steps, finished = self._done_steps()
        self.bar.n = steps
        self.bar.set_postfix_str(f"{finished}/{len(self.runs)} runs done", refresh=False)
        self.bar.refresh()

    def __enter__(self):
        if self.enabled:
            self.refresh()
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.enabled:
            self.thread.join()
            self.refresh()
        self.bar.close()


def run_sweep(sweep_dir: str | Path, spec: SweepSpec, jobs: int = 1, progress: bool = True) -> list[dict]:
    """Train and score every unfinished run of `spec` under SWEEP/runs; returns the
    scores of all runs. jobs > 1 trains that many runs at once in worker processes,
    each with cpu_count // jobs threads."""
    sweep_dir = Path(sweep_dir)
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    from ..activations import open_store

    store = open_store(spec.activations)          # fails early on a missing store
    if store.d <= 0:
        raise ConfigError(f"store {spec.activations} is empty")
    prepare(sweep_dir, spec)
    todo = [r for r in spec.runs if not is_finished(sweep_dir, r)]
    # Small runs first: the frontier's low end appears early, and an interruption
    # loses the least work.
    todo.sort(key=lambda r: run_flops(r.architecture, store.d, r.n_latents, spec.batch_size, r.n_tokens, r.k))
    with _Progress(sweep_dir, spec.runs, spec.batch_size, progress):
        if jobs == 1:
            for r in todo:
                train_and_score(sweep_dir, spec, r)
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(train_and_score, sweep_dir, spec, r, threads) for r in todo]
                for f in as_completed(futures):
                    f.result()
    return collect(sweep_dir)


def collect(sweep_dir: str | Path, check: bool = True) -> list[dict]:
    """Scores of the sweep's finished runs; with `check`, refuses runs scored on
    another store or eval sample than the sweep's."""
    sweep_dir = Path(sweep_dir)
    spec = read_sweep(sweep_dir)
    want = {"activations": spec.identity()["activations"], "eval_seed": spec.eval_seed}
    results = []
    for r in spec.runs:
        path = run_dir(sweep_dir, r) / EVAL_FILE
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        got = {k: result["eval"].get(k) for k in want}
        if check and got != want:
            raise ConfigError(f"{path} was scored on {got}, the sweep uses {want}: re-score it (delete the file and rerun the sweep)")
        results.append(result)
    if check and len({res["eval"]["eval_tokens"] for res in results}) > 1:
        raise ConfigError(f"runs of {sweep_dir} were scored on held-out samples of different sizes; delete their {EVAL_FILE} and rerun the sweep")
    return results


def measured_throughput(results: list[dict]) -> float:
    """Training FLOPs per second on this machine, pooled over the sweep's runs."""
    timed = [r for r in results if r.get("elapsed_s")]
    if not timed:
        raise ConfigError("the sweep's runs have no timings: --hours needs a sweep trained on this machine; use --budget")
    return sum(r["flops"] for r in timed) / sum(r["elapsed_s"] for r in timed)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m monosemantic.scaling.sweep SPEC SWEEP [JOBS]
    import sys

    t0 = time.time()
    run_sweep(sys.argv[2], load_spec(sys.argv[1]), jobs=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    print(f"sweep done in {time.time() - t0:.0f} s")
