"""Matching L0 by a sparsity coefficient (synthetic_recovery.py --match-l0).

relu and jumprelu have no k: their L0 follows a coefficient (λ, λ₀), and comparing
them with the TopK family at equal L0 means finding the coefficient that gives it.
This does it on short runs: a geometric grid of the coefficient, every value trained
in one pass over the same stream (train_many), held-out L0 of each; L0 is close to a
power of the coefficient, so log L0 is fitted linearly in log λ (through the two
bracketing points) and solved for the target. Each later round trains the solution
and the fit takes it in. Short runs predict the full run's L0 only roughly (the
coefficient has longer to act at full strength in a longer run): the L0 column of
the final table says how close the full run came."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from monosemantic.evals.synthetic import SyntheticDictionary, recovery
from monosemantic.sae import ARCHITECTURES
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many


@dataclass
class MatchPlan:
    target: float          # held-out L0 wanted
    tokens: int            # training tokens of each short run
    grid: int = 3          # coefficients in the first round (each `ratio` x the last)
    ratio: float = 3.0
    rounds: int = 2        # passes: the grid, then the fitted value (refitted each round)
    heldout: int = 10_000  # rows the short runs' L0 is measured on


def coefficient_knob(arch: str) -> str | None:
    """The config field that sets L0 through a penalty (None: k sets it directly)."""
    knob = ARCHITECTURES[arch].sparsity_knob
    return None if knob == "k" else knob


def solve(points: list[tuple[float, float]], target: float) -> float:
    """(coefficient, L0) pairs -> the coefficient whose L0 is `target`, from the line
    through the two points that bracket it in (log coefficient, log L0); outside the
    measured range, the line through the two nearest ends (extrapolated at most 10x)."""
    pts = sorted((c, l0) for c, l0 in points if c > 0 and l0 > 0)
    if len(pts) == 1:
        c, l0 = pts[0]
        return c * (3.0 if l0 > target else 1 / 3)    # L0 falls as the coefficient rises
    logs = [(math.log(c), math.log(l0)) for c, l0 in pts]
    t = math.log(target)
    pair = next(((a, b) for a, b in zip(logs, logs[1:]) if min(a[1], b[1]) <= t <= max(a[1], b[1])), None)
    if pair is None:   # all above or all below the target: extend from the end nearest to it
        pair = (logs[-2], logs[-1]) if min(l for _, l in logs) > t else (logs[0], logs[1])
    (x0, y0), (x1, y1) = pair
    slope = (y1 - y0) / (x1 - x0) if x1 != x0 and y1 != y0 else -1.0
    slope = min(slope, -0.1)                           # a flat or rising pair: assume a weak fall
    x = x0 + (t - y0) / slope
    lo, hi = logs[0][0] - math.log(10), logs[-1][0] + math.log(10)
    return math.exp(min(max(x, lo), hi))


def match_l0(truth: SyntheticDictionary, archs: list[str], base: dict[str, dict], plan: MatchPlan,
             latents: int, k: int, batch: int, train_extra: dict) -> dict[str, float]:
    """-> {arch: coefficient} for every arch in `archs` that has one, all matched in the
    same short passes. `base` holds each arch's other --set overrides (its own coefficient
    there, if any, is where the grid starts)."""
    todo = {arch: coefficient_knob(arch) for arch in archs if coefficient_knob(arch)}
    if not todo:
        return {}
    c = truth.cfg
    heldout = torch.from_numpy(truth.rows(plan.heldout, stream=1 << 21))  # neither training nor the final table's held-out rows
    start = {a: float(base.get(a, {}).get(knob, getattr(config_for({"architecture": a, "d_in": c.d, "n_latents": latents}), knob)))
             for a, knob in todo.items()}
    points: dict[str, list[tuple[float, float]]] = {a: [] for a in todo}
    cfg = TrainConfig(n_tokens=plan.tokens, batch_size=batch, log_every=50, checkpoint_every=0, **train_extra)
    for round_ in range(plan.rounds):
        if round_ == 0:
            half = (plan.grid - 1) / 2
            trial = [(a, start[a] * plan.ratio ** (i - half)) for a in todo for i in range(plan.grid)]
        else:
            trial = [(a, solve(points[a], plan.target)) for a in todo]
        jobs = [TrainJob(config_for({"architecture": a, "d_in": c.d, "n_latents": latents, "k": k,
                                     **base.get(a, {}), todo[a]: value}), cfg) for a, value in trial]
        results = train_many(truth.batches(batch), jobs, progress=True)
        for (a, value), result in zip(trial, results):
            l0 = recovery(result.sae, truth, heldout).l0
            points[a].append((value, l0))
            print(f"match-l0 round {round_ + 1}: {a} {todo[a]}={value:.4g} -> held-out L0 {l0:.1f}, "
                  f"train FVE {result.last_metrics.get('fve', float('nan')):.3f} after {plan.tokens:,} tokens "
                  f"(target {plan.target:g})", flush=True)
    chosen = {a: solve(points[a], plan.target) for a in todo}
    for a, value in chosen.items():
        print(f"match-l0: {a} {todo[a]}={value:.4g}", flush=True)
    return chosen
