"""Scaling laws from a sweep: the loss frontier per compute budget and power-law fits
of the optimal loss L*(C), features N*(C) and tokens T*(C), with bootstrap
confidence intervals.

The loss is the paper's: reconstruction MSE + λ·Σᵢ fᵢ‖W_dec,i‖ at the sweep's fixed λ
for ReLU (training units, E‖x‖ = √d), the MSE alone for TopK at fixed k; every run
is scored on the same held-out sample (sweep.py).

Frontier: the budgets are the runs' compute values (clustered within 2 %). Each size
N has a curve L_N(C) through its runs (one run per length T, each with its own full
schedule); at a budget C every size whose curve spans C gives L_N(C) (linear
interpolation in log-log, never extrapolated). L*(C) is the minimum over sizes and
N*(C) the minimiser, refined by a parabola in log N through the minimum and its two
neighbours when it is interior; T*(C) = C / FLOPs-per-token(N*). A grid of doubling
sizes and lengths makes these iso-FLOP profiles (Chinchilla's approach 2).

Power laws y = a·C^b are least-squares lines in log-log space; the bootstrap
resamples frontier points (pairs) and refits; intervals are percentiles. L*(C) is
fitted on every budget (the envelope is an upper bound on the optimum either way);
N*(C) and T*(C) on the budgets with an interior minimum when there are ≥ 3 of them,
since an edge minimum only bounds N*.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ConfigError
from .flops import step_flops
from .sweep import measured_throughput

LEVEL = 0.95


@dataclass
class PowerLaw:
    """y = coefficient · C^exponent, fitted in log space."""

    coefficient: float
    exponent: float
    exponent_ci: tuple[float, float]     # bootstrap percentile interval at LEVEL
    log_residual_std: float              # std of the log-space residuals (natural log)
    n_points: int
    boot: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))  # [n_boot, 2] (log a, b)
    residuals: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # [n_points] log residuals

    def predict(self, compute: float) -> float:
        return self.coefficient * compute ** self.exponent

    def interval(self, compute: float, level: float = LEVEL, seed: int = 0) -> tuple[float, float]:
        """Prediction interval: bootstrap parameters plus a resampled residual, so it
        covers both the fit's uncertainty and the scatter of single runs."""
        if len(self.boot) == 0:
            return (self.predict(compute),) * 2
        rng = np.random.default_rng(seed)
        logs = self.boot[:, 0] + self.boot[:, 1] * math.log(compute)
        if len(self.residuals):
            logs = logs + rng.choice(self.residuals, size=len(logs))
        lo, hi = np.quantile(logs, [(1 - level) / 2, (1 + level) / 2])
        return float(math.exp(lo)), float(math.exp(hi))

    def to_dict(self) -> dict:
        return {"coefficient": self.coefficient, "exponent": self.exponent, "exponent_ci": list(self.exponent_ci),
                "log_residual_std": self.log_residual_std, "n_points": self.n_points}


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y = a + b·x -> (a, b)."""
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def fit_power_law(compute, values, n_boot: int = 2000, seed: int = 0, level: float = LEVEL) -> PowerLaw:
    """Fit values = a·compute^b (both positive) with a pairs bootstrap on b."""
    x, y = np.log(np.asarray(compute, float)), np.log(np.asarray(values, float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ConfigError(f"a power law needs points at ≥ 2 different budgets, got {len(x)}: run a larger sweep")
    a, b = _line(x, y)
    residuals = y - (a + b * x)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0:
            boot.append(_line(x[i], y[i]))
    boot = np.array(boot) if boot else np.array([[a, b]])
    lo, hi = np.quantile(boot[:, 1], [(1 - level) / 2, (1 + level) / 2])
    dof = max(len(x) - 2, 1)
    return PowerLaw(math.exp(a), b, (float(lo), float(hi)), float(np.sqrt((residuals ** 2).sum() / dof)), len(x), boot, residuals)


def fit_offset_law(compute, values) -> tuple[float, float, float] | None:
    """y = E + A·C^-b (an irreducible loss E plus a power law), least squares on y;
    (E, A, b), or None when it does not converge to E ≥ 0, A > 0, b > 0. A diagnostic
    beside the pure power law: a frontier whose local exponent shrinks with C bends
    towards such a floor."""
    from scipy.optimize import curve_fit

    x, y = np.log(np.asarray(compute, float)), np.asarray(values, float)
    if len(x) < 4:
        return None
    x0 = float(np.mean(x))

    def law(x, E, A, b):
        return E + A * np.exp(-b * (x - x0))

    try:
        (E, A, b), _ = curve_fit(law, x, y, p0=[0.5 * y.min(), 0.5 * y.min(), 0.2], bounds=([0, 0, 0], [np.inf, np.inf, 5]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    if not (A > 0 and b > 0):
        return None
    return float(E), float(A * math.exp(b * x0)), float(b)


# --- the frontier --------------------------------------------------------------------
@dataclass
class FrontierPoint:
    compute: float        # FLOPs
    loss: float           # L*(C)
    n_latents: float      # N*(C) (refined, so not necessarily a trained size)
    n_tokens: float       # T*(C) = C / FLOPs-per-token(N*)
    best_run: str         # the trained run nearest the optimum
    sizes: int            # sizes whose curves reach this budget
    interior: bool        # the minimum was not at the smallest or largest size reaching C


def flops_per_token(result: dict, n_latents: float) -> float:
    return step_flops(result["architecture"], result["d"], max(int(round(n_latents)), 1), 1, result.get("k", 32)).total


def _budgets(computes: list[float], tol: float = 0.02) -> list[float]:
    out: list[float] = []
    for c in sorted(computes):
        if out and c <= out[-1] * (1 + tol):
            continue
        out.append(c)
    return out


def frontier(results: list[dict]) -> list[FrontierPoint]:
    """L*(C), N*(C), T*(C) at each run budget reached by ≥ 1 size (see module doc)."""
    if not results:
        raise ConfigError("the sweep has no finished runs: run `monosemantic sweep` first")
    by_size: dict[int, list[dict]] = {}
    for r in results:
        by_size.setdefault(int(r["n_latents"]), []).append(r)
    curves = {n: sorted(rs, key=lambda r: r["flops"]) for n, rs in by_size.items()}
    points = []
    for c in _budgets([r["flops"] for r in results]):
        reached = []  # (n, loss at c, nearest run)
        for n, rs in sorted(curves.items()):
            cs = np.log([r["flops"] for r in rs])
            ls = np.log([r["loss"] for r in rs])
            lc = math.log(c)
            if lc < cs[0] - 0.02 or lc > cs[-1] + 0.02:
                continue
            loss = float(np.exp(np.interp(lc, cs, ls)))
            nearest = min(rs, key=lambda r: abs(math.log(r["flops"]) - lc))
            reached.append((n, loss, nearest["name"]))
        i = min(range(len(reached)), key=lambda j: reached[j][1])
        n_best, loss_best, name = reached[i]
        interior = 0 < i < len(reached) - 1
        if interior:
            # parabola in log N through the minimum and its neighbours
            xs = np.log([reached[j][0] for j in (i - 1, i, i + 1)])
            ys = np.log([reached[j][1] for j in (i - 1, i, i + 1)])
            p2, p1, p0 = np.polyfit(xs, ys, 2)
            if p2 > 0:
                xv = float(np.clip(-p1 / (2 * p2), xs[0], xs[2]))
                n_best, loss_best = math.exp(xv), float(math.exp(p0 + p1 * xv + p2 * xv * xv))
        tokens = c / flops_per_token(results[0], n_best)
        points.append(FrontierPoint(float(c), loss_best, float(n_best), float(tokens), name, len(reached), interior))
    return points


# --- the fit ------------------------------------------------------------------------
@dataclass
class ScalingFit:
    architecture: str
    loss_definition: str
    d: int
    k: int
    frontier: list[FrontierPoint]
    loss: PowerLaw        # L*(C)
    latents: PowerLaw     # N*(C)
    tokens: PowerLaw      # T*(C)
    holdout: dict | None  # the largest budget predicted from the smaller ones
    throughput_flops_per_s: float | None = None
    n_runs: int = 0
    allocation_points: str = "all"   # N*, T* fitted on "interior" minima only, or on "all" frontier points

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "loss_definition": self.loss_definition, "d": self.d, "k": self.k,
                "n_runs": self.n_runs, "throughput_flops_per_s": self.throughput_flops_per_s,
                "allocation_points": self.allocation_points,
                "laws": {"loss": self.loss.to_dict(), "n_latents": self.latents.to_dict(), "n_tokens": self.tokens.to_dict()},
                "holdout": self.holdout, "frontier": [asdict(p) for p in self.frontier]}


def loss_definition(result: dict) -> str:
    if result.get("penalty_term"):
        return f"mse + {result['penalty_coefficient']:g}·{result['penalty_term']} (held-out, training units)"
    return f"mse at k={result.get('k')} (held-out, training units)"


def fit_sweep(results: list[dict], n_boot: int = 2000, seed: int = 0, holdout: bool = True) -> ScalingFit:
    """Fit the three laws on every frontier point; with `holdout`, also refit on the
    runs below the largest budget and predict that budget's frontier loss."""
    points = frontier(results)
    usable = [p for p in points if p.sizes >= 1]
    if len(usable) < 2:
        raise ConfigError(f"the sweep's runs give {len(usable)} compute budget(s); a fit needs ≥ 2 (add lengths or sizes)")
    C = [p.compute for p in usable]
    # N* at a budget whose best size is the smallest or largest trained there is only a
    # bound on the optimum: fit N*(C) and T*(C) on the interior minima when there are
    # enough of them (≥ 3 budgets), else on every point, and say which.
    interior = [p for p in usable if p.interior]
    allocation = interior if len({p.compute for p in interior}) >= 3 else usable
    Ca = [p.compute for p in allocation]
    fit = ScalingFit(
        results[0]["architecture"], loss_definition(results[0]), int(results[0]["d"]), int(results[0].get("k", 32)), points,
        fit_power_law(C, [p.loss for p in usable], n_boot, seed),
        fit_power_law(Ca, [p.n_latents for p in allocation], n_boot, seed + 1),
        fit_power_law(Ca, [p.n_tokens for p in allocation], n_boot, seed + 2),
        None, n_runs=len(results), allocation_points="interior" if allocation is interior else "all")
    if holdout:
        fit.holdout = holdout_error(results, n_boot, seed)
    try:
        fit.throughput_flops_per_s = measured_throughput(results)
    except ConfigError:
        pass
    return fit


def holdout_error(results: list[dict], n_boot: int = 2000, seed: int = 0) -> dict | None:
    """Fit L*(C) on the runs below the largest budget, predict the largest budget's
    frontier loss; the relative error |pred − obs| / obs."""
    points = frontier(results)
    if len(points) < 3:
        return None
    top = points[-1]
    below = [r for r in results if r["flops"] < top.compute / 1.02]
    train_points = frontier(below)
    if len(train_points) < 2:
        return None
    law = fit_power_law([p.compute for p in train_points], [p.loss for p in train_points], n_boot, seed)
    predicted = law.predict(top.compute)
    lo, hi = law.interval(top.compute)
    out = {"compute": top.compute, "observed_loss": top.loss, "predicted_loss": predicted, "interval": [lo, hi],
           "relative_error": abs(predicted - top.loss) / top.loss, "inside_interval": lo <= top.loss <= hi,
           "fitted_exponent": law.exponent, "fitted_exponent_ci": list(law.exponent_ci),
           "budgets_used": len(train_points), "observed_run": top.best_run}
    offset = fit_offset_law([p.compute for p in train_points], [p.loss for p in train_points])
    if offset is not None:
        E, A, b = offset
        pred = E + A * top.compute ** -b
        out["offset_law"] = {"E": E, "A": A, "b": b, "predicted_loss": pred, "relative_error": abs(pred - top.loss) / top.loss}
    return out


def format_fit(fit: ScalingFit) -> str:
    lines = [f"{fit.n_runs} runs, {fit.architecture}; loss = {fit.loss_definition}",
             f"{'budget (FLOPs)':>15} {'L*':>9} {'N*':>8} {'T*':>10}  best run",]
    for p in fit.frontier:
        lines.append(f"{p.compute:15.3e} {p.loss:9.4f} {p.n_latents:8.0f} {p.n_tokens:10.0f}  {p.best_run}"
                     f"{'' if p.interior or p.sizes < 3 else '  (edge of the sizes)'}")
    for name, law in (("L*(C)", fit.loss), ("N*(C)", fit.latents), ("T*(C)", fit.tokens)):
        lo, hi = law.exponent_ci
        lines.append(f"{name} = {law.coefficient:.4g} · C^{law.exponent:+.3f}   exponent 95% CI [{lo:+.3f}, {hi:+.3f}]"
                     f"   ({law.n_points} budgets)")
    if fit.allocation_points == "all" and not all(p.interior for p in fit.frontier):
        lines.append("N*, T* fitted on every budget, some with the best size at the edge of the sizes tried (fewer "
                     "than 3 interior minima): their exponents are rough; add sizes around N* to pin them down")
    h = fit.holdout
    if h:
        lines.append(f"held-out largest budget {h['compute']:.3e}: observed {h['observed_loss']:.4f}, predicted "
                     f"{h['predicted_loss']:.4f} [{h['interval'][0]:.4f}, {h['interval'][1]:.4f}] from {h['budgets_used']} "
                     f"smaller budgets: relative error {h['relative_error']:.1%}"
                     f"{'' if h['inside_interval'] else ' (outside the interval)'}")
        o = h.get("offset_law")
        if o:
            lines.append(f"  with an irreducible term, L = {o['E']:.4g} + {o['A']:.4g}·C^-{o['b']:.3f} on the same budgets "
                         f"predicts {o['predicted_loss']:.4f}: relative error {o['relative_error']:.1%}")
    if fit.throughput_flops_per_s:
        lines.append(f"measured training throughput {fit.throughput_flops_per_s:.3e} FLOP/s")
    return "\n".join(lines)
