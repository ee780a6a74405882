"""What FeatureDB reads out of `features.db`: typed records, one per table row or query."""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import FeatureDBError

KINDS = ("feature", "neuron")
UNIT_KINDS = KINDS + ("residual", "pca", "random")  # what scores may be about (autointerp/units.py)
SORT_COLUMNS = {"id": "f.id", "density": "f.density", "max_act": "f.max_act", "mean_act": "f.mean_act", "count": "f.count", "score": "s.score",
                # a seeded permutation of the ids (Knuth's multiplicative hash): a random sample that pages stably
                "random": "((f.id + :seed) * 2654435761) % 4294967296"}


@dataclass
class Example:
    context_id: int
    position: int  # the example token, in context coordinates
    activation: float
    start: int  # context position of tokens[0]
    token_ids: list[int]
    acts: list[float]  # the feature's activation on each window token
    tokens: list[str]  # display text per token, decoded by bytes ("" = continues the previous token's character)


@dataclass
class Interval:
    index: int  # 0 = the octave holding the max; the last one is the tail below
    lo: float
    hi: float
    examples: list[Example]


@dataclass
class TokenEffect:
    token_id: int
    token: str
    value: float


@dataclass
class FeatureSummary:
    id: int
    kind: str
    count: int
    density: float
    max_act: float
    mean_act: float
    explanation: str | None = None
    score: float | None = None


@dataclass
class Feature(FeatureSummary):
    histogram: list[int] = field(default_factory=list)  # counts per log10 bin
    hist_log10_edges: list[float] = field(default_factory=list)
    promoted: list[TokenEffect] = field(default_factory=list)
    suppressed: list[TokenEffect] = field(default_factory=list)
    neighbours: list[tuple[int, float]] = field(default_factory=list)  # (id, decoder cosine)
    top: list[Example] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    negatives: list[Example] = field(default_factory=list)
    explanations: list[dict] = field(default_factory=list)
    scores: list[dict] = field(default_factory=list)


@dataclass
class TokenHit:
    feature_id: int
    activation: float  # the feature's highest activation on the matched token
    token_id: int
    token: str


@dataclass
class PromptFeatures:
    tokens: list[str]  # the prompt's tokens (BOS-like token first, not scored)
    top: list[tuple[int, float, int]]  # (feature id, max activation, position of the max)
    per_token: list[list[tuple[int, float]]]  # for each position, its strongest features
    selected: dict[int, list[float]] = field(default_factory=dict)  # requested features' activation per position


def check_kind(kind: str, kinds: tuple = KINDS) -> str:
    if kind not in kinds:
        raise FeatureDBError(f"unknown kind {kind!r}: use {', '.join(repr(k) for k in kinds)}")
    return kind
