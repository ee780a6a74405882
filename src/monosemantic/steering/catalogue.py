"""Measuring the concept catalogue on a run: per concept set, the feature chosen on the
train half and how specific it is on the test half it never saw.

- chosen on the train half, two ways: the best AUROC (`rank_auroc`, the specificity
  pick), and steering/concepts.find_concept_features (contrastive candidates
  re-ranked by logit effect toward the concept's words: the feature
  benchmarks/steering.py clamps);
- held-out specificity: AUROC of the feature's per-text max activation, test-half
  positives against test-half negatives (0.5 = chance, 1 = every positive above every
  negative), with the one-sided Mann-Whitney p-value;
- spurious: held-out AUROC below SPURIOUS_BELOW, i.e. it was picked for something the
  other half does not share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from scipy.stats import mannwhitneyu
from torch import Tensor

from ..auroc import auroc_columns
from .concept_sets import Concept
from .concepts import RankedFeature, find_concept_features, text_maxes

SPURIOUS_BELOW = 0.75   # held-out AUROC; at 20 vs 20 texts chance reaches it with p ≈ 0.003


def auroc(pos: Tensor, neg: Tensor) -> Tensor:
    """pos [P, n], neg [N, n] -> [n]: per column, the AUROC of `monosemantic.auroc`."""
    return torch.from_numpy(auroc_columns(pos, neg))


def p_value(pos: Sequence[float], neg: Sequence[float]) -> float:
    """One-sided Mann-Whitney p that positives are not above negatives."""
    if len(set(pos) | set(neg)) == 1:
        return 1.0
    return float(mannwhitneyu(pos, neg, alternative="greater").pvalue)


@dataclass
class Example:
    text: str
    activation: float
    positive: bool


@dataclass
class Pick:
    """One chosen feature, scored on the test half."""
    feature: int
    how: str                           # how it was chosen on the train half
    train_auroc: float
    heldout_auroc: float
    heldout_p: float                   # one-sided Mann-Whitney, test positives above test negatives
    heldout_pos_mean: float            # mean per-text max on test positives / negatives
    heldout_neg_mean: float
    spurious: bool                     # heldout_auroc < SPURIOUS_BELOW
    examples: list[Example]            # its strongest test texts, positives then negatives


@dataclass
class ConceptMeasure:
    name: str
    n_train: tuple[int, int]           # (positives, negatives)
    n_test: tuple[int, int]
    best: Pick                         # the best train-half AUROC (rank_auroc)
    steering: Pick                     # find_concept_features: contrastive re-ranked by logit effect

    def to_json(self) -> dict:
        return asdict(self)


def concept_maxes(lm, sae, layer: int, concept: Concept) -> dict[str, tuple[Tensor, Tensor]]:
    """{"train"|"test": (positives [P, n], negatives [N, n])} per-text max activations."""
    out = {}
    for split in ("train", "test"):
        half = concept.half(split)
        out[split] = (text_maxes(lm, sae, layer, half.positive), text_maxes(lm, sae, layer, half.negative))
    return out


def rank_auroc(pos: Tensor, neg: Tensor, top: int = 20) -> list[RankedFeature]:
    """Features by AUROC of per-text max activation, positives vs negatives; ties (often
    several at 1.0 on 20 + 20 texts) broken by the activation gap in units of the
    feature's max over these texts."""
    a = auroc(pos, neg)                                                      # [n]
    gap = (pos.mean(0) - neg.mean(0)) / torch.cat([pos, neg]).amax(0).clamp_min(1e-12)   # [n], in [-1, 1]
    order = torch.argsort(a * 10 + gap, descending=True)[:top]
    return [RankedFeature(int(i), float(a[i]), f"AUROC {a[i]:.3f}, gap {gap[i]:.2f}") for i in order]


def _pick(feature: int, how: str, train_a: Tensor, te_pos: Tensor, te_neg: Tensor, test: Concept, n_examples: int) -> Pick:
    f = feature
    held = float(auroc(te_pos[:, f:f + 1], te_neg[:, f:f + 1])[0])
    top_pos = sorted(zip(test.positive, te_pos[:, f].tolist()), key=lambda e: -e[1])[:n_examples]
    top_neg = sorted(zip(test.negative, te_neg[:, f].tolist()), key=lambda e: -e[1])[:n_examples]
    return Pick(f, how, float(train_a[f]), held, p_value(te_pos[:, f].tolist(), te_neg[:, f].tolist()),
                float(te_pos[:, f].mean()), float(te_neg[:, f].mean()), held < SPURIOUS_BELOW,
                [Example(t, round(a, 3), True) for t, a in top_pos] + [Example(t, round(a, 3), False) for t, a in top_neg])


def measure_concept(lm, sae, layer: int, concept: Concept, n_examples: int = 3,
                    maxes: dict[str, tuple[Tensor, Tensor]] | None = None) -> ConceptMeasure:
    """Both picks made on the train half only, then scored on the test half."""
    train, test = concept.halves()
    maxes = maxes or concept_maxes(lm, sae, layer, concept)
    (tr_pos, tr_neg), (te_pos, te_neg) = maxes["train"], maxes["test"]
    train_a = auroc(tr_pos, tr_neg)                                          # [n]
    best = rank_auroc(tr_pos, tr_neg, top=1)[0]
    steer = find_concept_features(lm, sae, layer, train, top=1, maxes=(tr_pos, tr_neg))[0]
    return ConceptMeasure(concept.name, (len(train.positive), len(train.negative)), (len(test.positive), len(test.negative)),
                          _pick(best.feature, "best train AUROC: " + best.detail, train_a, te_pos, te_neg, test, n_examples),
                          _pick(steer.feature, "contrastive, logit re-rank: " + steer.detail, train_a, te_pos, te_neg, test,
                                n_examples))
