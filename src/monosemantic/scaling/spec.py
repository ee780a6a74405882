"""The spec of a sweep (what sweep.py trains): many training runs over one shared store, each a normal run directory
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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import atomic
from ..errors import ConfigError
from ..sae import ARCHITECTURES

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
        data = atomic.read_json(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read sweep spec {path}: {e}") from e
    return parse_spec(data, path.parent)


def read_sweep(sweep_dir: str | Path) -> SweepSpec:
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE}): run `monosemantic sweep SPEC --out {sweep_dir}` first")
    data = atomic.read_json(path)
    return SweepSpec(data["activations"], [RunSpec(**r) for r in data["runs"]],
                     **{k: data[k] for k in ("batch_size", "lr", "eval_tokens", "eval_seed", "seed")})


def prepare(sweep_dir: str | Path, spec: SweepSpec) -> None:
    """Write SWEEP/sweep.json, refusing a sweep directory made for another store or
    eval sample (its runs would not compare with the new ones). New runs may be
    added to an existing sweep."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SWEEP_FILE
    if path.is_file():
        old = atomic.read_json(path)
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
