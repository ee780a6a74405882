from __future__ import annotations

import pytest
import torch


@pytest.fixture
def lm(tiny_llama):
    return tiny_llama


@pytest.fixture
def ids(lm):
    return torch.tensor([[lm.bos_id] + lm.tokenizer("The cat sat on the mat and", add_special_tokens=False)["input_ids"]])
