"""A family of SAEs along the fitted frontier: the analogue of the paper's 1M / 4M /
34M, three compute budgets a factor apart, each trained with the planner's
features and tokens on the sweep's store, then evaluated: the fit's loss on the
sweep's held-out sample (beside the planner's prediction), and FVE, L0, dead fraction,
loss recovered by splicing into the model (evals/run.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import atomic
from ..activations import open_store
from ..errors import ConfigError
from ..evals.run import evaluate_runs
from ..train import train_runs
from .fit import ScalingFit
from .plan import Plan, plan
from .sweep import evaluate_checkpoint, last_metrics, read_sweep, train_config

FAMILY_FILE = "family.json"


@dataclass
class Member:
    name: str
    budget_flops: float
    n_latents: int
    n_tokens: int
    predicted_loss: float
    loss: float | None = None             # observed, on the sweep's held-out sample (same definition as the fit)
    l0: float | None = None
    fve: float | None = None
    loss_recovered: float | None = None   # None when the store has no model/tokens
    dead_fraction: float | None = None
    train_seconds: float | None = None


def family_budgets(fit: ScalingFit, factor: float = 4.0, top: float | None = None) -> list[float]:
    """Three budgets ending at `top` (default: the sweep's largest), `factor` apart."""
    top = top or max(p.compute for p in fit.frontier)
    return [top / factor ** 2, top / factor, top]


def train_family(sweep_dir: str | Path, fit: ScalingFit, budgets: list[float], eval_tokens: int = 20_000,
                 progress: bool = True) -> list[Member]:
    """Train (or resume, or skip when done) one SAE per budget under SWEEP/family/,
    all in one pass over the store (train.train_many), then evaluate each."""

    spec = read_sweep(sweep_dir)
    if not spec.runs:
        raise ConfigError(f"{sweep_dir} has no runs")
    template = spec.runs[0]
    out = Path(sweep_dir) / "family"
    planned = []
    for budget in sorted(budgets):
        p: Plan = plan(fit, budget, batch_size=spec.batch_size)
        planned.append((budget, p, replace(template, n_latents=p.n_latents, n_tokens=p.n_tokens)))
    train_runs([(out / run.name, run.sae_cfg(), train_config(spec, run)) for _, _, run in planned],
               activations=spec.activations, resume=True, progress=progress)
    heldout = open_store(spec.activations).sample(spec.eval_tokens, split="heldout", seed=spec.eval_seed)
    # evaluated together: the members share the model's baseline forwards (evals.run.evaluate_runs)
    todo = [out / run.name for _, _, run in planned if not (out / run.name / "eval.json").is_file()]
    fresh = dict(zip(todo, evaluate_runs(todo, n_tokens=eval_tokens, progress=progress)))
    members = []
    for budget, p, run in planned:
        run_dir = out / run.name
        ev = fresh.get(run_dir) or atomic.read_json(run_dir / "eval.json")
        m = last_metrics(run_dir)
        loss = evaluate_checkpoint(run_dir, heldout)["loss"]
        members.append(Member(run.name, budget, p.n_latents, p.n_tokens, p.predicted_loss, loss, ev.get("l0"), ev.get("fve"),
                              ev.get("loss_recovered"), ev.get("dead_fraction"), m.get("elapsed_s")))
        atomic.write_json(out / FAMILY_FILE, [asdict(x) for x in members])
    return members


def format_family(members: list[Member]) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v:.1%}"

    def num(v):
        return float("nan") if v is None else v

    lines = [f"{'features':>9} {'tokens':>11} {'budget':>10} {'loss':>8} {'pred.':>8} {'L0':>6} {'FVE':>6} {'loss rec.':>9} {'dead':>6}  run"]
    for m in members:
        lines.append(f"{m.n_latents:9,} {m.n_tokens:11,} {m.budget_flops:10.2e} {num(m.loss):8.2f} {m.predicted_loss:8.2f} {num(m.l0):6.1f} "
                     f"{num(m.fve):6.3f} {pct(m.loss_recovered):>9} {pct(m.dead_fraction):>6}  {m.name}")
    return "\n".join(lines)
