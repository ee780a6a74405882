"""Training SAEs: the loop, schedules, dead-latent tracking, checkpoints."""

from .config import TrainConfig
from .loop import TrainJob, TrainResult, train_sae
from .many import train_many
from .run import sae_is_complete, train_run, train_runs

__all__ = ["TrainConfig", "TrainJob", "TrainResult", "sae_is_complete", "train_many", "train_run", "train_runs", "train_sae"]
