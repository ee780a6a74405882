from __future__ import annotations

import pytest
from feature_helpers import TinySAE


@pytest.fixture
def tiny_sae(tiny_llama):
    return TinySAE(tiny_llama.d_model, 48, scale=3.0)
