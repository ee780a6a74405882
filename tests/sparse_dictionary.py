"""Synthetic activations with a known ground truth: rows that are sparse non-negative
combinations of a random unit dictionary (shared by the training and scaling tests)."""

from __future__ import annotations

import numpy as np


def sparse_rows(n_rows: int, seed: int = 0, d: int = 16, n_true: int = 32, active: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(n_true, d))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((n_rows, n_true))
    for i in range(n_rows):
        codes[i, rng.choice(n_true, active, replace=False)] = rng.uniform(0.5, 2.0, active)
    return (codes @ dictionary).astype(np.float32)
