"""Harvesting residual-stream activations into a sharded store, and reading it back
as shuffled, scaled batches."""

from .harvest import HarvestConfig, Tokens, harvest
from .store import ActivationStore, open_store

__all__ = ["ActivationStore", "HarvestConfig", "Tokens", "harvest", "open_store"]
