"""Trainer checkpoints: one file with everything a resumed run needs, written
atomically; the previous one is kept until the new one is complete."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import atomic
from ..errors import CheckpointError
from ..state_file import load_state

LATEST = "latest.pt"
PREVIOUS = "previous.pt"


def save_checkpoint(directory: Path, state: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    latest = directory / LATEST
    # A hard link keeps the old checkpoint readable as previous.pt while the new one
    # is written; the rename of the new file over latest.pt is the commit point.
    if latest.exists():
        (directory / PREVIOUS).unlink(missing_ok=True)
        os.link(latest, directory / PREVIOUS)
    atomic.write_with(latest, lambda tmp: torch.save(state, tmp))
    return latest


def has_checkpoint(directory: Path) -> bool:
    return (directory / LATEST).is_file()


def load_checkpoint(directory: Path) -> dict:
    path = directory / LATEST
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {directory}: nothing to resume; run without --resume to start training")
    try:
        state = load_state(path)
    except ValueError as e:  # damaged, or a pickle of something other than tensors and numbers
        hint = f" ({directory / PREVIOUS} is the one before it: move it to {path} to resume from there)" if (directory / PREVIOUS).is_file() else ""
        raise CheckpointError(f"checkpoint {path} is unreadable ({e}){hint}; or use --force to start again") from e
    missing = {"step", "sae_config", "sae", "optimizer", "dead", "train_config"} - set(state)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {sorted(missing)}: it is not a monosemantic checkpoint; use --force to start again")
    return state
