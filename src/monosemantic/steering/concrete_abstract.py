"""Concrete vs abstract: which features fire on concrete instances of a concept (code
with a bug, a lie told in dialogue) and on abstract discussion of it (prose about bugs,
about lying) alike, and which fire on one kind only?

For a concept set whose positives are marked "concrete" / "abstract"
(steering/concept_sets.py), per feature and kind, AUROC of the per-text max activation:
that kind's positives against all negatives of the same half.

1. candidates: AUROC >= `threshold` on the train half for at least one kind;
2. each candidate is judged on the test half it was not chosen on:
   shared        >= threshold on both kinds;
   concrete-only >= threshold on concrete and < `off` on abstract (abstract-only alike);
   leaning       >= threshold on one kind, between `off` and threshold on the other;
   unconfirmed   < threshold on both (the train half's pick did not hold up);
3. overlap = shared / (shared + concrete-only + abstract-only + leaning): of the
   features confirmed on held-out text for some kind, the fraction confirmed on both;
4. null: the same counts with each half's positive/negative labels shuffled, i.e. how
   many "confirmed" features chance alone gives at these sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .catalogue import auroc, concept_maxes
from .concept_sets import KINDS, Concept

CATEGORIES = ("shared", "concrete-only", "abstract-only", "leaning", "unconfirmed")


@dataclass
class KindFeature:
    feature: int
    category: str
    train: dict[str, float]          # kind -> train-half AUROC
    heldout: dict[str, float]        # kind -> test-half AUROC
    examples: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # kind -> strongest test texts


@dataclass
class KindAnalysis:
    name: str
    threshold: float
    off: float
    n_test: dict[str, int]           # test-half texts: concrete, abstract, negative
    counts: dict[str, int]           # category -> features
    overlap: float | None            # None when nothing was confirmed
    null_counts: dict[str, int]      # the same with labels shuffled
    features: list[KindFeature]      # every confirmed candidate, the strongest first

    def to_json(self) -> dict:
        return asdict(self)


def kind_aurocs(pos: Tensor, kinds: Sequence[str], neg: Tensor) -> dict[str, Tensor]:
    """{kind: [n] AUROC of that kind's positives against all negatives}."""
    return {k: auroc(pos[[i for i, x in enumerate(kinds) if x == k]], neg) for k in KINDS}


def categorise(train: dict[str, Tensor], test: dict[str, Tensor], threshold: float, off: float) -> dict[int, str]:
    """{feature: category} for every candidate (train AUROC >= threshold on some kind)."""
    c, a = test["concrete"], test["abstract"]
    candidates = torch.nonzero((train["concrete"] >= threshold) | (train["abstract"] >= threshold)).flatten().tolist()
    out = {}
    for f in candidates:
        hc, ha = float(c[f]) >= threshold, float(a[f]) >= threshold
        if hc and ha:
            out[f] = "shared"
        elif hc or ha:
            other = float(a[f]) if hc else float(c[f])
            out[f] = ("concrete-only" if hc else "abstract-only") if other < off else "leaning"
        else:
            out[f] = "unconfirmed"
    return out


def _counts(cats: dict[int, str]) -> dict[str, int]:
    return {k: sum(1 for v in cats.values() if v == k) for k in CATEGORIES}


def _shuffled(pos: Tensor, kinds: list[str], neg: Tensor, gen: torch.Generator) -> tuple[Tensor, list[str], Tensor]:
    """Positive/negative labels permuted; the shuffled positives keep the kind counts."""
    rows = torch.cat([pos, neg])
    order = torch.randperm(len(rows), generator=gen)
    return rows[order[: len(pos)]], kinds, rows[order[len(pos):]]


def analyse_kinds(name: str, train: tuple[Tensor, list[str], Tensor], test: tuple[Tensor, list[str], Tensor],
                  threshold: float = 0.8, off: float = 0.6, seed: int = 0) -> tuple[KindAnalysis, dict[str, Tensor]]:
    """train/test: (positives [P, n], their kinds, negatives [N, n]). Pure logic on per-text
    maxima; returns the analysis (without examples) and the test-half AUROCs."""
    tr, te = kind_aurocs(*train), kind_aurocs(*test)
    cats = categorise(tr, te, threshold, off)
    counts = _counts(cats)
    confirmed = sum(counts[k] for k in CATEGORIES[:4])
    gen = torch.Generator().manual_seed(seed)
    null = _counts(categorise(kind_aurocs(*_shuffled(*train, gen)), kind_aurocs(*_shuffled(*test, gen)), threshold, off))
    feats = [KindFeature(f, cat, {k: round(float(tr[k][f]), 4) for k in KINDS}, {k: round(float(te[k][f]), 4) for k in KINDS})
             for f, cat in cats.items() if cat != "unconfirmed"]
    feats.sort(key=lambda x: (CATEGORIES.index(x.category), -min(x.heldout.values()), -max(x.heldout.values())))
    n_test = {k: test[1].count(k) for k in KINDS} | {"negative": int(len(test[2]))}
    return KindAnalysis(name, threshold, off, n_test, counts, counts["shared"] / confirmed if confirmed else None, null, feats), te


def analyse_concept(lm, sae, layer: int, concept: Concept, threshold: float = 0.8, off: float = 0.6,
                    n_examples: int = 2, max_listed: int = 12, maxes: dict | None = None) -> KindAnalysis:
    """The analysis on a model and SAE, with each listed feature's strongest test texts
    of each kind (verbatim)."""
    if not concept.has_kinds():
        raise ValueError(f"concept {concept.name} has no concrete/abstract marks")
    maxes = maxes or concept_maxes(lm, sae, layer, concept)
    train, test = concept.halves()
    (tr_pos, tr_neg), (te_pos, te_neg) = maxes["train"], maxes["test"]
    result, _ = analyse_kinds(concept.name, (tr_pos, train.positive_kind, tr_neg), (te_pos, test.positive_kind, te_neg),
                              threshold, off)
    # keep the strongest of each category, so one-kind features are listed beside shared ones
    listed: list[KindFeature] = []
    for cat in CATEGORIES[:4]:
        listed += [x for x in result.features if x.category == cat][:max_listed // 3 if cat != "leaning" else 2]
    for x in listed:
        for k in KINDS:
            idx = [i for i, kind in enumerate(test.positive_kind) if kind == k]
            acts = te_pos[idx, x.feature]
            order = torch.argsort(acts, descending=True)[:n_examples].tolist()
            x.examples[k] = [(test.positive[idx[i]], round(float(acts[i]), 3)) for i in order]
        x.examples["negative"] = [(test.negative[i], round(float(te_neg[i, x.feature]), 3))
                                  for i in torch.argsort(te_neg[:, x.feature], descending=True)[:1].tolist()]
    result.features = listed
    return result
