"""Multilinguality of features: does a feature fire on the same passage in every
language, or on one language's text only?

Input: per feature, its activation on P aligned passages in L languages, pooled over
each passage's valid tokens ([L, P, n], the same passage index in every language).
The score of a feature is the mean over the L(L-1)/2 language pairs of the Pearson
correlation, across passages, of its activations in the two languages: 1 when it
rises and falls with the content whatever the language, ~0 when its firing in one
language says nothing about the other. The baseline is the same activations with the
alignment broken (each language's passages permuted independently): what the score is
for a feature that fires on these texts but not on what they say.

A live feature (firing on at least `min_fires` passage-language pairs) is
- language-agnostic when its score is above the `quantile` of the shuffled
  baseline's scores (over all live features);
- language-specific when, not agnostic, at least `specific_share` of its activation
  mass falls in one language;
- neither otherwise (fires across languages, but not on the same passages).

Parallel technical text shares untranslated strings (commands, file names, URLs) in
every language, and a feature that follows one of them is "agnostic" without
crossing any language boundary; `same_token_share` separates those (peak on the same
token in every language) from cross-lingual ones (peak on different tokens)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor

from .multilingual_config import MIN_FIRES, QUANTILE, SPECIFIC_SHARE


def pairwise_correlation(acts: Tensor, method: str = "pearson") -> Tensor:
    """acts [L, P, n] -> [n]: mean over language pairs of the correlation across
    passages; a pair where either language never varies counts 0."""
    x = acts.double()
    if method == "spearman":
        x = torch.from_numpy(rankdata(x.numpy(), axis=1))                  # ties get their mean rank
    elif method != "pearson":
        raise ValueError(f"unknown correlation {method!r}")
    x = x - x.mean(1, keepdim=True)                                         # [L, P, n]
    norm = x.norm(dim=1)                                                    # [L, n]
    L = x.shape[0]
    total = torch.zeros(x.shape[2], dtype=torch.float64)
    for a in range(L):
        for b in range(a + 1, L):
            denom = norm[a] * norm[b]
            r = (x[a] * x[b]).sum(0) / denom.clamp_min(1e-30)
            total += torch.where(denom > 0, r, torch.zeros_like(r))
    return (total / max(L * (L - 1) // 2, 1)).float()


def shuffle_alignment(acts: Tensor, seed: int = 0) -> Tensor:
    """The same activations with each language's passages in an independent random
    order (the first language kept): the alignment is gone, everything else stays."""
    g = torch.Generator().manual_seed(seed)
    out = acts.clone()
    for lang in range(1, acts.shape[0]):
        out[lang] = acts[lang, torch.randperm(acts.shape[1], generator=g)]
    return out


def language_share(acts: Tensor) -> Tensor:
    """[L, n]: the share of each feature's activation mass that falls in each language."""
    mass = acts.clamp_min(0).sum(1)                                         # [L, n]
    return mass / mass.sum(0, keepdim=True).clamp_min(1e-30)


def same_token_share(acts: Tensor, peak: Tensor) -> Tensor:
    """[n]: how often a feature peaks on the same token in the languages where it fires:
    per passage firing in >= 2 languages, the largest share of those languages that peak
    on one token id, averaged over such passages (peak [L, P, n]: token ids, -1
    where the feature does not fire). 1 for a
    feature that follows an untranslated string (a command, a file name, a URL) in
    every language, 1/L when every language peaks on its own word."""
    fires = acts > 0                                                         # [L, P, n]
    counted = fires.sum(0)                                                   # [P, n] languages firing
    mode = torch.zeros(counted.shape, dtype=torch.long)
    for lang in range(acts.shape[0]):
        # firing languages that peak where lang does (0 when lang does not fire: its peak is -1)
        mode = torch.maximum(mode, ((peak == peak[lang]) & fires).sum(0))   # [P, n]
    several = counted >= 2
    share = torch.where(several, mode.float() / counted.clamp_min(1).float(), torch.zeros(counted.shape))
    return share.sum(0) / several.sum(0).clamp_min(1).float()


@dataclass
class Multilinguality:
    score: Tensor            # [n] mean pairwise correlation, aligned passages
    baseline: Tensor         # [n] the same with the alignment shuffled
    share: Tensor            # [L, n] activation mass per language
    live: Tensor             # [n] bool: fires on >= min_fires passage-language pairs
    threshold: float         # the baseline's `quantile` over live features
    agnostic: Tensor         # [n] bool
    specific: Tensor         # [n] bool
    quantile: float
    specific_share: float
    min_fires: int

    def fractions(self) -> dict:
        live = int(self.live.sum())
        agn, spec = int(self.agnostic.sum()), int(self.specific.sum())
        return {"live": live, "agnostic": agn, "specific": spec, "neither": live - agn - spec,
                "agnostic_fraction": agn / max(live, 1), "specific_fraction": spec / max(live, 1),
                "baseline_agnostic_fraction": float((self.baseline[self.live] > self.threshold).float().mean()) if live else 0.0}


def multilinguality(acts: Tensor, *, quantile: float = QUANTILE, specific_share: float = SPECIFIC_SHARE,
                    min_fires: int = MIN_FIRES, seed: int = 0, method: str = "pearson") -> Multilinguality:
    """acts [L, P, n] pooled activations (L >= 2 languages, the same P passages)."""
    if acts.ndim != 3 or acts.shape[0] < 2 or acts.shape[1] < 3:
        raise ValueError(f"need [languages >= 2, passages >= 3, features], got {tuple(acts.shape)}")
    score = pairwise_correlation(acts, method)
    baseline = pairwise_correlation(shuffle_alignment(acts, seed), method)
    share = language_share(acts)
    live = (acts > 0).sum((0, 1)) >= min_fires                              # [n]
    threshold = float(np.quantile(baseline[live].numpy(), quantile)) if live.any() else float("inf")
    agnostic = live & (score > threshold)
    specific = live & ~agnostic & (share.amax(0) >= specific_share)
    return Multilinguality(score, baseline, share, live, threshold, agnostic, specific, quantile, specific_share, min_fires)
