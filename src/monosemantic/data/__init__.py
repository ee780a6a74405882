"""The data stage: corpus sources, cleaning, and packing into fixed-length token
contexts (BOS at position 0, a separator between documents)."""

from .corpus import Corpus, build_corpus, load_corpus
from .packing import PackedTokens, load_tokens, prepare_run_tokens

__all__ = ["Corpus", "PackedTokens", "build_corpus", "load_corpus", "load_tokens", "prepare_run_tokens"]
