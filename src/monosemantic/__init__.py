"""monosemantic: sparse dictionary learning on language models."""

__version__ = "0.1.0"
