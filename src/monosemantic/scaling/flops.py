"""FLOP accounting for scaling laws, by architecture name. The counts themselves
belong to each SAE class (`SAE.step_flops`, sae/flops.py explains them)."""

from __future__ import annotations

from ..errors import ConfigError
from ..sae.flops import StepFlops
from ..sae.registry import ARCHITECTURES, config_for

__all__ = ["StepFlops", "step_flops", "config_step_flops", "run_flops"]


def step_flops(architecture: str, d: int, n_latents: int, batch_size: int, k: int = 32,
               n_dead: int = 0, aux_k: int | None = None) -> StepFlops:
    """Matmul FLOPs of one training step (forward + backward)."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"no FLOP count for architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    cfg = config_for({"architecture": architecture, "d_in": d, "n_latents": n_latents, "k": k, "aux_k": aux_k})
    return ARCHITECTURES[architecture].step_flops(cfg, batch_size, n_dead)


def config_step_flops(sae_cfg, batch_size: int, n_dead: int = 0) -> int:
    """Step FLOPs for an SAEConfig (or its dict)."""
    cfg = config_for(sae_cfg) if isinstance(sae_cfg, dict) else sae_cfg
    return ARCHITECTURES[cfg.architecture].step_flops(cfg, batch_size, n_dead).total


def run_flops(architecture: str, d: int, n_latents: int, batch_size: int, n_tokens: int, k: int = 32) -> int:
    """Training FLOPs of a whole run (no AuxK: dead latents are not known in advance)."""
    return (n_tokens // batch_size) * step_flops(architecture, d, n_latents, batch_size, k).total
