"""Loading language models and running them up to a layer, with hooks to read and
replace the residual stream."""

from .dtype import choose_dtype
from .language_model import LanguageModel
from .loading import load_model

__all__ = ["LanguageModel", "choose_dtype", "load_model"]
