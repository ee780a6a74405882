"""The multilingual analysis's settings (kept free of torch so that building the CLI's
parser stays fast: cli/main.py). The thresholds' reasons are in multilingual.py."""

from __future__ import annotations

from dataclasses import dataclass, field

QUANTILE = 0.99
SPECIFIC_SHARE = 0.8
MIN_FIRES = 5

# Seven languages, four scripts (Latin, Cyrillic, Japanese, Chinese), all with >= 1,200
# aligned handbook passages; the run's corpus decides which exist.
LANGUAGES = ("en-US", "de-DE", "es-ES", "fr-FR", "ru-RU", "ja-JP", "zh-CN")


@dataclass
class MultilingualConfig:
    languages: tuple[str, ...] = LANGUAGES
    passages: int = 200          # aligned passages scored (each in every language)
    max_tokens: int = 192        # a passage longer than this in any language is skipped, never cut
    pool: str = "max"            # over a passage's valid tokens: "max" (does it fire on it) or "mean"
    quantile: float = QUANTILE   # agnostic: score above this quantile of the shuffled baseline
    specific_share: float = SPECIFIC_SHARE
    min_fires: int = MIN_FIRES
    top: int = 10                # features with side-by-side examples
    seed: int = 0
    tokens_per_batch: int = 2048
    compare: list[str] = field(default_factory=list)   # other runs on the same store (SAE sizes)
