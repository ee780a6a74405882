"""Architecture name -> class. Adding one = a new file + one line here
(docs/architecture.md, "Adding an architecture")."""

from __future__ import annotations

from collections import ChainMap
from dataclasses import asdict, fields

from ..errors import ConfigError
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
ALL_ARCHITECTURES: ChainMap[str, type[SAE]] = ChainMap(ARCHITECTURES, INFERENCE_ONLY)  # a live view of both


def config_for(values: dict | SAEConfig) -> SAEConfig:
    """The architecture's own config class built from a dict (or a plain SAEConfig):
    keys it does not know are a ConfigError, missing ones take their defaults."""
    if isinstance(values, SAEConfig):
        cls = ALL_ARCHITECTURES.get(values.architecture)
        if cls is None or isinstance(values, cls.config_class):
            return values
        values = asdict(values)
    arch = values.get("architecture")
    if arch not in ALL_ARCHITECTURES:
        raise ConfigError(f"SAE config: unknown architecture {arch!r}; choose one of {sorted(ALL_ARCHITECTURES)}")
    config_class = ALL_ARCHITECTURES[arch].config_class
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"SAE config: {arch} has no setting(s) {unknown}")
    try:
        return config_class(**values)
    except TypeError as e:
        raise ConfigError(f"SAE config: {e}") from e


def make_sae(cfg: SAEConfig) -> SAE:
    """A freshly initialised SAE (float32, CPU); raises ConfigError on a bad config."""
    cfg = config_for(cfg)
    cfg.validate()
    return ALL_ARCHITECTURES[cfg.architecture](cfg)
