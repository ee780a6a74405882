"""Learning-rate and sparsity-coefficient schedules as pure functions of the step."""

from __future__ import annotations


def lr_factor(step: int, total: int, warmup_fraction: float, decay_fraction: float) -> float:
    """Multiplier of the peak lr: linear warm-up, flat, then linear decay to 0 over
    the last `decay_fraction` of the run (the paper's recipe)."""
    warmup = int(total * warmup_fraction)
    if step < warmup:
        return (step + 1) / warmup
    decay_start = total - int(total * decay_fraction)
    if step >= decay_start and total > decay_start:
        return max(0.0, (total - step) / (total - decay_start))
    return 1.0


def sparsity_factor(step: int, total: int, warmup_fraction: float) -> float:
    """Multiplier of λ: linear warm-up from 0 over the first `warmup_fraction`."""
    warmup = int(total * warmup_fraction)
    return 1.0 if step >= warmup else (step + 1) / warmup
