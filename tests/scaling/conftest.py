"""A tiny synthetic store and sweep specs over it, shared by the sweep, family and
CLI tests: a few dozen steps of 64 rows on d=16, seconds in all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sparse_dictionary import sparse_rows

D, BATCH = 16, 64


def write_store(path: Path, seed: int = 0, n_rows: int = 4096) -> Path:
    np.save(path, sparse_rows(n_rows, seed, d=D))
    return path


def write_spec(path: Path, activations: Path, **overrides) -> Path:
    spec = {"activations": str(activations), "architecture": "relu", "l1_coefficient": 1.0, "batch_size": BATCH,
            "lr": 3e-3, "eval_tokens": 256, "eval_seed": 0,
            "grid": {"n_latents": [16, 32], "n_tokens": [BATCH * 40, BATCH * 80]}, **overrides}
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def store(tmp_path) -> Path:
    return write_store(tmp_path / "acts.npy")


@pytest.fixture
def make_store():
    """write_store(path, seed=0, n_rows=4096) -> path of a synthetic [n_rows, 16] .npy."""
    return write_store


@pytest.fixture
def make_spec():
    """write_spec(path, activations, **overrides) -> path of a tiny relu sweep spec
    (batch 64, λ 1, 16/32 latents x 40/80 steps unless overridden)."""
    return write_spec


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """A finished 2 sizes x 2 lengths sweep (3 compute budgets), trained once per session."""
    from monosemantic.scaling.sweep import load_spec, run_sweep

    root = tmp_path_factory.mktemp("tiny-sweep")
    spec = write_spec(root / "spec.json", write_store(root / "acts.npy"))
    run_sweep(root / "sweep", load_spec(spec), progress=False)
    return root / "sweep"
