"""The planner: a compute budget (FLOPs, or hours at the sweep's measured
throughput) -> how many features and tokens, with the predicted loss.

N = N*(C) from the fitted law; T = C / FLOPs-per-token(N), so the plan spends exactly
the budget. The exponents are clamped so the plan is monotone in the budget: N*
grows (exponent ≥ 0), T grows (N's exponent ≤ 1) and the loss does not rise
(loss exponent ≤ 0); a sweep too small to pin them down would otherwise give a plan
that shrinks as the budget grows."""

from __future__ import annotations

import math
from typing import NamedTuple

from ..errors import ConfigError
from .fit import ScalingFit
from .flops import step_flops


class Plan(NamedTuple):
    budget_flops: float
    n_latents: int
    n_tokens: int
    predicted_loss: float
    loss_interval: tuple[float, float]   # 95 % prediction interval
    hours: float | None                  # at the measured throughput, when known
    extrapolated: bool                   # budget outside the sweep's range


def _value(law, exponent: float, compute: float, pivot: float) -> float:
    """The law with its exponent replaced, pinned to the fitted value at `pivot`."""
    return law.predict(pivot) * (compute / pivot) ** exponent


def tokens_per_flop_line(architecture: str, d: int, k: int) -> tuple[float, float]:
    """FLOPs per token as f0 + s·N (exact: the step count is linear in N)."""
    m = 2 * k + 1
    f1 = step_flops(architecture, d, m, 1, k).total
    s = step_flops(architecture, d, m + 1, 1, k).total - f1
    return f1 - s * m, s


def plan(fit: ScalingFit, budget_flops: float | None = None, hours: float | None = None, batch_size: int = 1024) -> Plan:
    if (budget_flops is None) == (hours is None):
        raise ConfigError("give exactly one of --budget FLOPS or --hours H")
    if hours is not None:
        if not fit.throughput_flops_per_s:
            raise ConfigError("the sweep has no measured throughput: use --budget FLOPS")
        if not hours > 0:
            raise ConfigError("--hours must be positive")
        budget_flops = hours * 3600 * fit.throughput_flops_per_s
    if not (budget_flops and budget_flops > 0 and math.isfinite(budget_flops)):
        raise ConfigError(f"--budget must be a positive number of FLOPs, got {budget_flops}")
    C = float(budget_flops)
    computes = [p.compute for p in fit.frontier]
    pivot = math.exp(sum(math.log(c) for c in computes) / len(computes))
    n_real = _value(fit.latents, min(max(fit.latents.exponent, 0.0), 1.0), C, pivot)
    f0, slope = tokens_per_flop_line(fit.architecture, fit.d, fit.k)
    # T from the unrounded N keeps both N and T monotone after rounding
    tokens = max(batch_size, int(C / (f0 + slope * n_real)) // batch_size * batch_size)
    n = max(1, int(round(n_real)))
    loss = _value(fit.loss, min(fit.loss.exponent, 0.0), C, pivot)
    lo, hi = fit.loss.interval(C)
    if fit.loss.exponent > 0:  # clamped: the interval is centred on the clamped prediction
        lo, hi = lo * loss / fit.loss.predict(C), hi * loss / fit.loss.predict(C)
    hours_out = C / fit.throughput_flops_per_s / 3600 if fit.throughput_flops_per_s else None
    return Plan(C, n, tokens, loss, (lo, hi), hours_out, not (min(computes) <= C <= max(computes) * 1.02))


def format_plan(p: Plan) -> str:
    when = f" (~{p.hours:.2g} h on this machine)" if p.hours is not None else ""
    note = "\n(extrapolated beyond the sweep's budgets: treat the interval as optimistic)" if p.extrapolated else ""
    return (f"budget {p.budget_flops:.3e} FLOPs{when}: train {p.n_latents:,} features on {p.n_tokens:,} tokens; "
            f"predicted loss {p.predicted_loss:.4g} (95% interval {p.loss_interval[0]:.4g} – {p.loss_interval[1]:.4g}){note}")
