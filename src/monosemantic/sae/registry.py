"""Architecture name -> class. Adding one = a new file + one line here."""

from __future__ import annotations

from .base import SAE, SAEConfig
from .batchtopk import BatchTopKSAE
from .gated import GatedSAE
from .jumprelu import JumpReLUSAE
from .relu import ReLUSAE
from .topk import TopKSAE

ARCHITECTURES: dict[str, type[SAE]] = {
    "relu": ReLUSAE,
    "topk": TopKSAE,
    "batchtopk": BatchTopKSAE,
    "jumprelu": JumpReLUSAE,
}

# Architectures that load and run (encode/decode, features, steering) but are not
# trained here: SAEs imported from other libraries (`monosemantic import`).
INFERENCE_ONLY: dict[str, type[SAE]] = {"gated": GatedSAE}
ALL_ARCHITECTURES: dict[str, type[SAE]] = ARCHITECTURES | INFERENCE_ONLY


def make_sae(cfg: SAEConfig) -> SAE:
    """A freshly initialised SAE (float32, CPU); raises ConfigError on a bad config."""
    cfg.validate()
    return ALL_ARCHITECTURES[cfg.architecture](cfg)
