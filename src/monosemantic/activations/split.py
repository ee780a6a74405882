"""Deterministic held-out split by context, so tokens of one context never sit on
both sides and the split survives resume, reshuffling and re-harvest."""

from __future__ import annotations

import numpy as np

HELDOUT_FRACTION = 0.05


def is_heldout(context_ids: np.ndarray, fraction: float = HELDOUT_FRACTION) -> np.ndarray:
    # Knuth multiplicative hash: spreads consecutive ids uniformly over [0, 2^32).
    h = (context_ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return h < np.uint64(int(fraction * 2**32))
