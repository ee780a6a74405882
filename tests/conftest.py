"""Shared fixtures: the embedded model (real, cached after its first load) and tiny
randomly initialised models of each supported family, built here with no download."""

from __future__ import annotations

import pytest
import torch

from monosemantic.models import LanguageModel, load_model

VOCAB = 49152  # the embedded tokenizer's, so tiny models can share it


@pytest.fixture(scope="session")
def embedded_lm() -> LanguageModel:
    return load_model("embedded", dtype="float32")


@pytest.fixture(scope="session")
def tokenizer(embedded_lm):
    return embedded_lm.tokenizer


def _tiny_config(family: str):
    from transformers import Gemma3TextConfig, GPT2Config, LlamaConfig

    common = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if family == "llama":
        return LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **common)
    if family == "gpt2":
        return GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=4, n_head=4, n_positions=256, **common)
    if family == "gemma":
        return Gemma3TextConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=32,
                                max_position_embeddings=256, **common)
    raise ValueError(family)


def build_tiny_model(family: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_tiny_config(family))
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, tokenizer):
    """Each family saved as a local Hugging Face directory, loaded through load_model."""
    dirs = {}
    for family in ("llama", "gpt2", "gemma"):
        path = tmp_path_factory.mktemp(f"tiny-{family}")
        build_tiny_model(family).save_pretrained(path)
        tokenizer.save_pretrained(path)
        dirs[family] = path
    return dirs


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_dirs) -> LanguageModel:
    return load_model(str(tiny_model_dirs["llama"]), dtype="float32")


@pytest.fixture(scope="session")
def vlm_run(tmp_path_factory, tokenizer):
    """A run of the text pipeline on a tiny random Idefics3 (tests/tiny_vlm.py), with a
    folder of test pictures beside it: RUN.parent / "pictures"."""
    from tiny_vlm import build_vlm_run, image_folder

    root = tmp_path_factory.mktemp("vlm")
    tokenizer.save_pretrained(root / "tokenizer")
    image_folder(root / "pictures")
    return build_vlm_run(root, root / "tokenizer")
