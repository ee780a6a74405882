"""Training SAEs: the loop, schedules, dead-latent tracking, checkpoints."""

from .config import TrainConfig
from .loop import TrainResult, train_sae
from .run import sae_is_complete, train_run

__all__ = ["TrainConfig", "TrainResult", "sae_is_complete", "train_run", "train_sae"]
