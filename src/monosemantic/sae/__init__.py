"""Sparse autoencoders: one file per architecture, a registry, and SAELens-compatible
save/load (docs/sae_format.md)."""

from .base import SAE, ForwardOutput, SAEConfig
from .io import load_sae, save_sae
from .registry import ARCHITECTURES, make_sae

__all__ = ["SAE", "SAEConfig", "ForwardOutput", "ARCHITECTURES", "make_sae", "save_sae", "load_sae"]
