"""Reading the torch state files of a run directory (RUN/checkpoints/latest.pt,
RUN/features.build.pt) without unpickling arbitrary objects: run directories are
shared and downloaded, and a pickle's `__reduce__` would run code on open.
`weights_only=True` is torch's allow-list unpickler (tensors, dicts, lists, tuples,
numbers, strings, None); everything the project saves is made of those."""

from __future__ import annotations

from pathlib import Path

import torch


def load_state(path: str | Path) -> dict:
    """The dict saved at `path`. Raises ValueError for anything else: a damaged file,
    a foreign pickle, an object outside the allow-list (nothing of it is executed)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for these
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]) from e
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a dict")
    return state
