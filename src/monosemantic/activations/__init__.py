"""Harvesting residual-stream activations into a sharded store, and reading it back
as shuffled, scaled batches."""

from .harvest import HarvestConfig, Tokens, harvest, harvest_layers
from .store import ActivationStore, open_store

__all__ = ["ActivationStore", "HarvestConfig", "Tokens", "harvest", "harvest_layers", "open_store"]
