"""Architecture name -> class. Adding one = a new file + one line here."""

from __future__ import annotations

from .base import SAE, SAEConfig
from .batchtopk import BatchTopKSAE
from .jumprelu import JumpReLUSAE
from .matryoshka import MatryoshkaSAE
from .relu import ReLUSAE
from .topk import TopKSAE

ARCHITECTURES: dict[str, type[SAE]] = {
    "relu": ReLUSAE,
    "topk": TopKSAE,
    "batchtopk": BatchTopKSAE,
    "jumprelu": JumpReLUSAE,
    "matryoshka": MatryoshkaSAE,
}


def make_sae(cfg: SAEConfig) -> SAE:
    """A freshly initialised SAE (float32, CPU); raises ConfigError on a bad config."""
    cfg.validate()
    return ARCHITECTURES[cfg.architecture](cfg)
