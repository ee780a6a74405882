"""Progress bars that honour the user's wish for none: `monosemantic --quiet` and the
TQDM_DISABLE environment variable. tqdm reads TQDM_* variables only as defaults for
arguments that are not passed, and every stage passes `disable=`, so it is checked
here."""

from __future__ import annotations

import os

from tqdm import tqdm

_OFF = ("1", "true", "yes", "on")


def bars_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in _OFF


def progress_bar(*args, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar, shown when `enabled` and not switched off by the environment."""
    return tqdm(*args, disable=not enabled or bars_disabled(), **kwargs)
