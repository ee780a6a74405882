"""The overview's tables in words: eval.json and features.db keys as readable names,
their values formatted for their unit (fractions as percentages, counts with
separators, seconds as durations). Unknown keys keep a humanised name."""

from __future__ import annotations

import math

# key -> (name, unit); units: pct (a fraction shown as %), int, s (seconds), nats, x (plain number), text
EVAL = {
    "fve": ("fraction of variance explained (held out)", "x4"),
    "mse_normalised": ("MSE (normalised, E‖x‖ = √d)", "x4"),
    "l0": ("L0 (active features per token)", "x1"),
    "dead_fraction": ("dead features", "pct"),
    "dense_fraction": ("dense features (> 10 % of tokens)", "pct"),
    "dead_window_tokens": ("dead = never fired in", "tokens"),
    "loss_recovered": ("loss recovered (vs zero ablation)", "pct"),
    "spliced_loss_recovered": (None, None),  # the same number as loss_recovered
    "spliced_loss_recovered_mean_ablation": ("loss recovered (vs mean ablation)", "pct"),
    "spliced_ce_clean": ("cross-entropy, clean", "nats"),
    "spliced_ce_sae": ("cross-entropy, SAE spliced in", "nats"),
    "spliced_ce_zero": ("cross-entropy, layer zero-ablated", "nats"),
    "spliced_ce_mean": ("cross-entropy, layer mean-ablated", "nats"),
    "spliced_kl_sae": ("KL(clean ‖ SAE spliced)", "nats"),
    "spliced_kl_zero": ("KL(clean ‖ zero-ablated)", "nats"),
    "spliced_tokens": ("tokens in the spliced eval", "tokens"),
    "eval_tokens": ("held-out tokens evaluated", "tokens"),
    "n_latents": ("features (latents)", "int"),
    "eval_seconds": ("eval time", "s"),
    "format": ("eval.json format", "text"),
}
META = {
    "model": ("model", "text"),
    "model_spec": ("model spec", "text"),
    "layer": ("layer (residual stream after block)", "int"),
    "d_model": ("model width", "int"),
    "n_features": ("features", "int"),
    "n_neurons": ("MLP neurons recorded", "int"),
    "n_tokens": ("tokens streamed", "tokens"),
    "n_contexts": ("contexts streamed", "int"),
    "heldout_contexts": ("of them held out from training", "int"),
    "ctx_len": ("context length", "tokens"),
    "outlier_threshold": ("outlier norm threshold", "x1"),
    "stream_seconds": ("database build time", "s"),
    "created": ("built", "text"),
    "bos_id": ("BOS-like token id", "int"),
    "norm_scale": ("activation scale (E‖x‖ = √d)", "x4"),
    "schema_version": ("database schema version", "text"),
    "complete": (None, None),  # always 1 on a readable database
}


def fmt(value, unit: str) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, str):
        return value
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    if unit == "pct":
        return f"{100 * value:.3g} %" if value else "0 %"
    if unit in ("int", "tokens"):
        return f"{int(value):,}" + (" tokens" if unit == "tokens" else "")
    if unit == "s":
        return f"{value:.0f} s" if value < 120 else f"{int(value // 60)} min {value % 60:.0f} s"
    if unit == "nats":
        return f"{value:.3f} nats"
    if unit.startswith("x"):
        digits = int(unit[1:] or 4)
        return f"{value:,.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.3g}"
    return f"{value:.4g}"


def rows(d: dict, names: dict) -> list[tuple[str, str]]:
    """(name, formatted value) for the scalar entries of `d`, known keys first in
    `names`' order, then the rest by key."""
    out = []
    known = [k for k in names if k in d] + sorted(k for k in d if k not in names)
    for k in known:
        v = d[k]
        if v is None or isinstance(v, (list, dict)) or (isinstance(v, str) and len(v) > 200):
            continue
        name, unit = names.get(k, (k.replace("_", " "), "x4" if isinstance(v, float) else "int"))
        if name is None:
            continue
        out.append((name, fmt(v, unit)))
    return out
