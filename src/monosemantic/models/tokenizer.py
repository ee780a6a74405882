"""The tokenizer of a model spec without loading its weights (for tracing rows
back to text)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from .embedded import embedded_gguf, gemma_gguf
from .loading import _COMPLETE, EMBEDDED_ALIASES, GEMMA_ALIASES, _gguf_cache_dir, _quiet_transformers
from .embedded import embedded_cache_dir


def load_tokenizer(spec: str = "embedded"):
    """Fast tokenizer for "embedded", "gemma3-270m", a .gguf, a model directory or a
    hub id (from the local Hugging Face cache)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    gguf: Path | None = None
    if spec.lower() in EMBEDDED_ALIASES:
        cache = embedded_cache_dir()
        gguf = None if (cache / _COMPLETE).exists() else embedded_gguf()
        source: Path | str = cache
    elif spec.lower() in GEMMA_ALIASES or spec.endswith(".gguf"):
        gguf = gemma_gguf() if spec.lower() in GEMMA_ALIASES else Path(spec).expanduser()
        cache = _gguf_cache_dir(gguf) if gguf.is_file() else None
        if cache is not None and (cache / _COMPLETE).exists():
            source, gguf = cache, None
    else:
        source = Path(spec).expanduser() if Path(spec).expanduser().is_dir() else spec
    try:
        if gguf is not None:
            return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        kwargs = {} if isinstance(source, Path) else {"local_files_only": True}
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the tokenizer of {spec!r} ({e})") from e
