"""Measuring the concept catalogue on a run: per concept set, the feature chosen on the
train half and how specific it is on the test half it never saw.

- chosen: steering/concepts.find_concept_features on the train half (contrastive
  candidates re-ranked by logit effect toward the concept's words: the feature
  steering uses), and beside it the feature with the best train-half AUROC;
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

from .concept_sets import Concept
from .concepts import find_concept_features, text_maxes

SPURIOUS_BELOW = 0.75   # held-out AUROC; at 20 vs 20 texts chance reaches it with p ≈ 0.003


def auroc(pos: Tensor, neg: Tensor, chunk: int = 4096) -> Tensor:
    """pos [P, n], neg [N, n] -> [n]: per column, P(a positive > a negative), ties
    counting half (the Mann-Whitney U / (P·N)). A feature silent on every text gets 0.5."""
    out = []
    for s in range(0, pos.shape[1], chunk):
        p, q = pos[:, None, s:s + chunk], neg[None, :, s:s + chunk]   # [P, 1, c], [1, N, c]
        out.append(((p > q).float() + 0.5 * (p == q).float()).mean((0, 1)))
    return torch.cat(out) if out else torch.zeros(0)


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
class ConceptMeasure:
    name: str
    n_train: tuple[int, int]           # (positives, negatives)
    n_test: tuple[int, int]
    feature: int                       # the steering pick (find_concept_features on the train half)
    pick_detail: str
    train_auroc: float
    heldout_auroc: float
    heldout_p: float
    heldout_pos_mean: float            # mean per-text max on test positives / negatives
    heldout_neg_mean: float
    spurious: bool
    auroc_feature: int                 # the best train-half AUROC
    auroc_feature_train: float
    auroc_feature_heldout: float
    examples: list[Example]            # the steering pick's strongest test texts, both sides

    def to_json(self) -> dict:
        return asdict(self)


def concept_maxes(lm, sae, layer: int, concept: Concept) -> dict[str, tuple[Tensor, Tensor]]:
    """{"train"|"test": (positives [P, n], negatives [N, n])} per-text max activations."""
    out = {}
    for split in ("train", "test"):
        half = concept.half(split)
        out[split] = (text_maxes(lm, sae, layer, half.positive), text_maxes(lm, sae, layer, half.negative))
    return out


def measure_concept(lm, sae, layer: int, concept: Concept, n_examples: int = 3,
                    maxes: dict[str, tuple[Tensor, Tensor]] | None = None) -> ConceptMeasure:
    train, test = concept.halves()
    maxes = maxes or concept_maxes(lm, sae, layer, concept)
    (tr_pos, tr_neg), (te_pos, te_neg) = maxes["train"], maxes["test"]
    pick = find_concept_features(lm, sae, layer, train, top=1, maxes=(tr_pos, tr_neg))[0]
    f = pick.feature
    train_a, test_a = auroc(tr_pos, tr_neg), auroc(te_pos, te_neg)            # [n] each
    # the best train AUROC; among ties (often several at 1.0) the larger activation gap
    gap = (tr_pos.mean(0) - tr_neg.mean(0)) / tr_pos.amax(0).clamp_min(1e-12)
    best = int(torch.argmax(train_a * 10 + gap.clamp(-1, 1)))
    texts = [(t, float(a), True) for t, a in zip(test.positive, te_pos[:, f])] + \
            [(t, float(a), False) for t, a in zip(test.negative, te_neg[:, f])]
    top_pos = sorted((e for e in texts if e[2]), key=lambda e: -e[1])[:n_examples]
    top_neg = sorted((e for e in texts if not e[2]), key=lambda e: -e[1])[:n_examples]
    return ConceptMeasure(
        concept.name, (len(train.positive), len(train.negative)), (len(test.positive), len(test.negative)),
        f, pick.detail, float(train_a[f]), float(test_a[f]), p_value(te_pos[:, f].tolist(), te_neg[:, f].tolist()),
        float(te_pos[:, f].mean()), float(te_neg[:, f].mean()), float(test_a[f]) < SPURIOUS_BELOW,
        best, float(train_a[best]), float(test_a[best]), [Example(*e) for e in top_pos + top_neg])
