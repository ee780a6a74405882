"""Feature interventions at layer L, as the paper does them: clamp, add, multiply,
always keeping the SAE's error term.

Clamp feature i to v:  x' = x̂(f with fᵢ := v) + (x − x̂(f)) = x + (v − fᵢ)·W_dec,i
(the decoder is linear, so the error term cancels into one rank-one update).
Add α:                 x' = x + α·W_dec,i
Multiply by m:         x' = x + (m − 1)·fᵢ·W_dec,i

    specs = [parse_intervention("123=10x"), parse_intervention("7=+4")]
    with steer(lm, sae, layer, specs, max_acts=db_max_acts):
        lm.model.generate(...)          # or any forward

Where: `positions="generated"` (the default of generation: `steered_completions`, the
CLI, the playground, the benchmark) steers only the positions that produce
new tokens: in a forward over more than one token (a whole prompt) its last position,
and every one-token forward (a decoding step of `generate`). The prompt's own
residuals stay as they are, so the model still reads the question it was asked; the
paper clamped every position, which on the 135M model drowns the prompt
(docs/steering.md). `positions="all"` steers every position but position 0 (the
BOS-like attention sink, ~100x the norm of other positions, as in the feature
database build).

Units: "=Nx" (clamp or add) is N times the feature's max activation over the dataset,
so "add 2x" moves the residual by twice the largest displacement the feature makes on
real text (a median of ~0.27 of the residual norm per 1x on the main run).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from ..errors import ConfigError

MODES = ("clamp", "add", "multiply")
UNITS = ("max", "abs")
POSITIONS = ("generated", "all")
MAX_ABS_VALUE = 1e6  # beyond this a residual in float16/bfloat16 overflows; almost surely a typo


@dataclass(frozen=True)
class Intervention:
    feature: int                 # latent id, 0..n_latents-1
    mode: str = "clamp"          # "clamp" | "add" | "multiply"
    value: float = 0.0           # clamp: target activation; add: α; multiply: m
    value_unit: str = "abs"      # "max": value × the feature's max activation over the dataset (clamp, add); "abs": as given

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"intervention mode {self.mode!r} is unknown: use one of {', '.join(MODES)}")
        if self.value_unit not in UNITS:
            raise ConfigError(f"intervention unit {self.value_unit!r} is unknown: use 'max' or 'abs'")
        if self.value_unit == "max" and self.mode == "multiply":
            raise ConfigError(f"feature {self.feature}: a multiplier has no unit; only clamp and add values can be given in units of the max activation")
        if isinstance(self.feature, bool) or not isinstance(self.feature, int) or self.feature < 0:
            raise ConfigError(f"feature id must be an integer >= 0, got {self.feature!r}")
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value) or abs(self.value) > MAX_ABS_VALUE:
            raise ConfigError(f"feature {self.feature}: value {self.value!r} is not a finite number of magnitude <= {MAX_ABS_VALUE:g}")

    def describe(self) -> str:
        if self.mode == "add":
            return f"{self.feature}=+{self.value:g}{'x' if self.value_unit == 'max' else ''}"
        if self.mode == "multiply":
            return f"{self.feature}=*{self.value:g}"
        return f"{self.feature}={self.value:g}{'x' if self.value_unit == 'max' else ''}"


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SPEC = re.compile(rf"^\s*(\d+)\s*(?:=\s*(?:\+(?P<addx>{_NUMBER})x|(?P<clampx>{_NUMBER})x|\+(?P<add>{_NUMBER})|\*(?P<mul>{_NUMBER})|(?P<abs>{_NUMBER})))?\s*$")
# A bare FEATURE adds DEFAULT_ADD times its max activation (times its decoder row) at
# the generated positions: the top two features by output effect so (the benchmark's
# strength 1, split over both) had the most completions both on concept and fluent in
# benchmarks/steering.py (docs/steering.md); clamping every position at the paper's
# 5-10x destroys the text of the 135M model.
DEFAULT_ADD = 0.5
DEFAULT_POSITIONS = "generated"

SPEC_HELP = (f"FEATURE alone adds {DEFAULT_ADD:g} times the feature's max activation over the dataset along its decoder "
             "direction (the setting that steered best in benchmarks/steering.py), FEATURE=+Nx adds N times it, "
             "FEATURE=Nx clamps to N times it, FEATURE=V clamps to "
             "the absolute value V, FEATURE=+A adds A·W_dec (A may be negative: =+-3), FEATURE=*M multiplies the activation by M")


def parse_intervention(spec: str) -> Intervention:
    """'123' (= '123=+DEFAULT_ADDx') | '123=+2x' | '123=10x' | '123=3.5' | '123=+4' | '123=*2' -> Intervention."""
    m = _SPEC.match(spec or "")
    if m is None:
        raise ConfigError(f"bad feature spec {spec!r}: {SPEC_HELP}")
    feature = int(m.group(1))
    if all(m.group(g) is None for g in ("clampx", "addx", "add", "mul", "abs")):
        return Intervention(feature, "add", DEFAULT_ADD, "max")
    try:
        if m.group("clampx") is not None:
            return Intervention(feature, "clamp", float(m.group("clampx")), "max")
        if m.group("addx") is not None:
            return Intervention(feature, "add", float(m.group("addx")), "max")
        if m.group("add") is not None:
            return Intervention(feature, "add", float(m.group("add")))
        if m.group("mul") is not None:
            return Intervention(feature, "multiply", float(m.group("mul")))
        return Intervention(feature, "clamp", float(m.group("abs")))
    except OverflowError:
        raise ConfigError(f"bad feature spec {spec!r}: the value overflows") from None


@dataclass(frozen=True)
class ResolvedPlan:
    """The interventions as tensors: one row per intervention, values in absolute units."""
    features: Tensor   # [k] int64
    modes: list[str]   # k entries
    values: Tensor     # [k] float32, absolute




def _max_act(max_acts, feature: int) -> float:
    if max_acts is None:
        raise ConfigError(f"feature {feature}: a value in units of max activation (=Nx) needs the run's features.db; "
                          f"give an absolute value (={feature} without x) or build the database (`monosemantic features RUN`)")
    value = float(max_acts(feature) if callable(max_acts) else max_acts[feature])
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"feature {feature} never fired on the dataset (max activation {value:g}): "
                          f"its =Nx value is undefined; clamp it to an absolute value instead")
    return value


def resolve(interventions: Sequence[Intervention], n_latents: int, max_acts=None) -> ResolvedPlan:
    """Check ids against the SAE and turn "max" units into absolute values."""
    if not interventions:
        raise ConfigError("no interventions given: pass at least one --feature FEATURE=VALUE")
    values = []
    for iv in interventions:
        if iv.feature >= n_latents:
            raise ConfigError(f"feature {iv.feature} does not exist: the SAE has {n_latents} features (0..{n_latents - 1})")
        v = iv.value * _max_act(max_acts, iv.feature) if iv.value_unit == "max" else iv.value
        if not math.isfinite(v) or abs(v) > MAX_ABS_VALUE:
            raise ConfigError(f"feature {iv.feature}: value {v:g} overflows (limit {MAX_ABS_VALUE:g})")
        values.append(v)
    return ResolvedPlan(torch.tensor([iv.feature for iv in interventions], dtype=torch.long),
                        [iv.mode for iv in interventions], torch.tensor(values, dtype=torch.float32))


def feature_acts(sae, x: Tensor, features: Tensor) -> Tensor:
    """[..., d] -> [..., k] activations of the chosen features (the SAE class knows
    whether it can compute only those: SAE.encode_latents)."""
    return sae.encode_latents(x, features)


def intervention_delta(sae, x: Tensor, plan: ResolvedPlan) -> Tensor:
    """The update x' − x for all interventions at once, [..., d] (float32)."""
    x = x.float()
    w = sae.W_dec[plan.features].float()                                    # [k, d]
    need_f = any(m != "add" for m in plan.modes)
    f = feature_acts(sae, x, plan.features) if need_f else None             # [..., k]
    coeffs = []
    for j, mode in enumerate(plan.modes):
        v = plan.values[j]
        if mode == "clamp":
            coeffs.append(v - f[..., j])
        elif mode == "add":
            coeffs.append(v.expand(x.shape[:-1]))
        else:  # multiply
            coeffs.append((v - 1) * f[..., j])
    return torch.stack(coeffs, -1) @ w                                      # [..., d]


def check_positions(positions: str) -> str:
    if positions not in POSITIONS:
        raise ConfigError(f"positions {positions!r} is unknown: use one of {', '.join(POSITIONS)}")
    return positions


def steering_fn(sae, plan: ResolvedPlan, skip_first: bool = True, positions: str = "all") -> Callable[[Tensor], Tensor]:
    """fn for LanguageModel.patch_residual: [B, T, d] -> [B, T, d]. positions="generated":
    a multi-token forward is steered at its last position only (module docstring)."""
    check_positions(positions)

    def fn(hidden: Tensor) -> Tensor:
        if positions == "generated" and hidden.shape[1] > 1:
            out = hidden.float().clone()                                        # [B, T, d]; the hook may not write into its input
            out[:, -1] = out[:, -1] + intervention_delta(sae, out[:, -1], plan)  # [B, d]
            return out.to(hidden.dtype)
        delta = intervention_delta(sae, hidden, plan)                       # [B, T, d]
        if skip_first and hidden.shape[1] > 1:
            delta[:, 0] = 0                                                 # attention sink stays as it is
        return (hidden.float() + delta).to(hidden.dtype)

    return fn


def check_compatible(lm, sae, layer: int) -> None:
    d_in = int(sae.W_dec.shape[1])
    if d_in != lm.d_model:
        raise ConfigError(f"the SAE reads {d_in}-dimensional activations but {lm.name} has d_model={lm.d_model}: "
                          f"this SAE was trained on another model; load the run's own model")
    lm.check_layer(layer)


@contextlib.contextmanager
def steer(lm, sae, layer: int, interventions: Sequence[Intervention], max_acts=None,
          skip_first: bool = True, positions: str = "all") -> Iterator[ResolvedPlan]:
    """Apply the interventions at layer `layer` in every forward (and `generate`) inside
    the block. max_acts: per-feature max activation (list/tensor, or a function of the
    id), needed only for "=Nx" values. positions: "all" (every forward is edited alike,
    as attribution and ablation need) or "generated" (what generation uses by default:
    DEFAULT_POSITIONS, module docstring)."""
    check_compatible(lm, sae, layer)
    check_positions(positions)
    plan = resolve(interventions, int(sae.W_dec.shape[0]), max_acts)
    sae_dev = sae.to(lm.device)
    plan = ResolvedPlan(plan.features.to(lm.device), plan.modes, plan.values.to(lm.device))
    with lm.patch_residual(layer, steering_fn(sae_dev, plan, skip_first, positions)):
        yield plan
