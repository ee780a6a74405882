"""Settings and result of a feature-database build."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .schema import DB_NAME
from .streaming import StreamConfig

DEFAULT_TOKENS = None  # the whole store: every context of RUN/tokens (298k tokens on the main run, ~3 minutes on 2 cores)
CHECKPOINT = "features.build.pt"
PARTIAL = DB_NAME + ".partial"


@dataclass(frozen=True)
class FeatureDBConfig:
    n_tokens: int | None = DEFAULT_TOKENS  # tokens streamed (whole contexts, held-out ones first); None: all of them
    neurons: bool = False  # also summarise the MLP neurons of the same layer
    stream: StreamConfig = field(default_factory=StreamConfig)
    logit_k: int = 10  # promoted / suppressed tokens kept per feature
    neighbour_k: int = 10  # nearest decoder directions kept per feature
    batch_contexts: int = 8  # contexts per forward (1k tokens at ctx_len 128)

    def to_dict(self) -> dict:
        return {**asdict(self), "stream": self.stream.to_dict()}


@dataclass(frozen=True)
class BuildResult:
    path: Path
    n_tokens: int  # tokens that counted (activations/valid.py: positions 0-1, special tokens and outliers excluded)
    n_features: int
    n_neurons: int
    stream_seconds: float  # model + SAE + summaries
    write_seconds: float  # logit effects, neighbours, database
    bytes: int
    reused: bool = False  # an up-to-date database was already there

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / max(self.stream_seconds, 1e-9)

    @property
    def bytes_per_feature(self) -> float:
        return self.bytes / max(self.n_features + self.n_neurons, 1)
