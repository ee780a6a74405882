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
from ..evals.run import evaluate_run
from ..train import TrainConfig, train_run
from .fit import ScalingFit
from .plan import Plan, plan
from .sweep import evaluate_checkpoint, last_metrics, read_sweep

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
    """Train (or resume, or skip when done) one SAE per budget under SWEEP/family/."""

    spec = read_sweep(sweep_dir)
    if not spec.runs:
        raise ConfigError(f"{sweep_dir} has no runs")
    template = spec.runs[0]
    out = Path(sweep_dir) / "family"
    members = []
    heldout = open_store(spec.activations).sample(spec.eval_tokens, split="heldout", seed=spec.eval_seed)
    for budget in sorted(budgets):
        p: Plan = plan(fit, budget, batch_size=spec.batch_size)
        run = replace(template, n_latents=p.n_latents, n_tokens=p.n_tokens)
        run_dir = out / run.name
        cfg = TrainConfig(n_tokens=run.n_tokens, batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed)
        train_run(run_dir, run.sae_cfg(), cfg, activations=spec.activations, resume=True, progress=progress)
        ev_path = run_dir / "eval.json"
        ev = atomic.read_json(ev_path) if ev_path.is_file() else evaluate_run(run_dir, n_tokens=eval_tokens, progress=progress)
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
