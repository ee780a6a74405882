"""A tiny real run for the autointerp tests: features.db built by the real builder on
the tiny random Llama (tests/conftest.py) with a random ReLU SAE, with and without the
neuron pass. Each test gets its own copy (explain writes into it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import TinySAE, make_tokens  # noqa: E402

from monosemantic.features import build_feature_db  # noqa: E402


def _build(tmp_path_factory, lm, neurons: bool) -> Path:
    run = tmp_path_factory.mktemp("ai-run")
    build_feature_db(run, lm=lm, sae=TinySAE(lm.d_model, 48, scale=3.0), tokens=make_tokens(24, 32, lm.bos_id), layer=2,
                     n_tokens=600, neurons=neurons, progress=False)
    return run


@pytest.fixture(scope="session")
def built_run(tmp_path_factory, tiny_llama) -> Path:
    return _build(tmp_path_factory, tiny_llama, neurons=True)


@pytest.fixture(scope="session")
def built_run_no_neurons(tmp_path_factory, tiny_llama) -> Path:
    return _build(tmp_path_factory, tiny_llama, neurons=False)


@pytest.fixture
def run(built_run, tmp_path) -> Path:
    shutil.copy(built_run / "features.db", tmp_path / "features.db")
    return tmp_path
