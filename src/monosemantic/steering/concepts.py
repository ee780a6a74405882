"""Finding the features behind a concept, three ways:

- contrastive: fire on positive texts, not on negative ones;
- span: fire inside a highlighted span ("the [[Eiffel Tower]] is") more than outside;
- logit effect: the feature's decoder direction, through the final norm's gain and
  the unembedding, raises the concept's tokens more than the rest of the vocabulary.

Concept sets shipped with the package live in steering/concepts/*.json; their format,
validation and fixed train/test split are in concept_sets.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .concept_sets import Concept, concept_names, load_concept  # noqa: F401  (re-exported: the stable API)


@dataclass
class RankedFeature:
    feature: int
    score: float
    detail: str = ""   # what the score is made of, for printing


# --- concept sets (loading and validation: concept_sets.py) ----------------------
def read_texts(path: str | Path) -> list[str]:
    """Texts from a file: a JSON list, or paragraphs separated by blank lines."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: give a text file (one example per paragraph) or a JSON list")
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise ConfigError(f"{path} must hold a JSON list of strings")
        texts = data
    else:
        texts = [p.strip() for p in re.split(r"\n\s*\n", text)]
    texts = [t for t in texts if t]
    if not texts:
        raise ConfigError(f"{path} holds no texts")
    return texts


def concept_token_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """The first token of each word, with and without a leading space (deduplicated)."""
    ids: list[int] = []
    for word in words:
        for variant in (" " + word.strip(), word.strip()):
            tok = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if tok and tok[0] not in ids:
                ids.append(int(tok[0]))
    if not ids:
        raise ConfigError("no concept tokens given: pass --tokens word1,word2")
    return ids


# --- activations -----------------------------------------------------------------
def text_activations(lm, sae, layer: int, texts: Sequence[str]) -> list[Tensor]:
    """Per text, [T, n] feature activations at positions 1.. (after the BOS-like token)."""
    out = []
    with torch.no_grad():
        for text in texts:
            ids = [lm.bos_id] + list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
            x = lm.residual(torch.tensor([ids]), layer)[0].float()          # [T, d]
            out.append(sae.encode(x)[1:].float())                           # [T-1, n]
    return out


def _per_text_max(acts: list[Tensor], n: int) -> Tensor:
    return torch.stack([a.amax(0) if len(a) else torch.zeros(n) for a in acts])  # [texts, n]


def contrastive_scores(pos: Tensor, neg: Tensor, scale: Tensor | None = None) -> Tensor:
    """pos [P, n], neg [N, n]: each text's max activation per feature. Score = (mean
    over positives − mean over negatives) / scale, scale = the feature's max (over these
    texts unless given): 1 = fires at its max on every positive and never on a negative."""
    if scale is None:
        scale = torch.cat([pos, neg]).amax(0)                               # [n]
    diff = pos.mean(0) - (neg.mean(0) if len(neg) else 0)
    return torch.where(scale > 0, diff / scale.clamp_min(1e-12), torch.zeros_like(diff))


def text_maxes(lm, sae, layer: int, texts: Sequence[str]) -> Tensor:
    """[texts, n]: each text's max activation per feature."""
    return _per_text_max(text_activations(lm, sae, layer, texts), int(sae.W_dec.shape[0]))


def rank_contrastive(lm, sae, layer: int, positive: Sequence[str], negative: Sequence[str], top: int = 20,
                     max_acts: Tensor | None = None, maxes: tuple[Tensor, Tensor] | None = None) -> list[RankedFeature]:
    """maxes: (positives' text_maxes, negatives' text_maxes) when already computed."""
    if not positive or not negative:
        raise ConfigError("contrastive ranking needs both positive and negative texts")
    pos, neg = maxes if maxes is not None else (text_maxes(lm, sae, layer, positive), text_maxes(lm, sae, layer, negative))
    scores = contrastive_scores(pos, neg)
    order = torch.argsort(scores, descending=True)[:top]
    return [RankedFeature(int(i), float(scores[i]), f"pos {pos[:, i].mean():.2f} neg {neg[:, i].mean():.2f}") for i in order]


SPAN = re.compile(r"\[\[(.+?)\]\]", re.S)


def split_span(tokenizer, text: str) -> tuple[list[int], list[bool]]:
    """Token ids of `text` with the [[...]] markers removed, and a mask of the tokens
    inside them. Each piece is tokenized on its own, so the span's edges are token edges."""
    ids: list[int] = []
    mask: list[bool] = []
    pos = 0
    for m in list(SPAN.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        for piece, inside in ((text[pos:end], False), ((m.group(1) if m else ""), True)):
            if piece:
                tok = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += tok
                mask += [inside] * len(tok)
        pos = m.end() if m else len(text)
    if not any(mask):
        raise ConfigError(f"no highlighted span in {text[:60]!r}: mark it like 'the [[Eiffel Tower]] is'")
    return ids, mask


def rank_span(lm, sae, layer: int, texts: Sequence[str], top: int = 20) -> list[RankedFeature]:
    """Score = (mean activation inside the spans − mean outside) / the feature's max
    over these texts."""
    inside, outside = [], []
    with torch.no_grad():
        for text in texts:
            ids, mask = split_span(lm.tokenizer, text)
            x = lm.residual(torch.tensor([[lm.bos_id] + ids]), layer)[0].float()
            f = sae.encode(x)[1:].float()                                   # [T, n]
            m = torch.tensor(mask)
            inside.append(f[m])
            outside.append(f[~m])
    fin, fout = torch.cat(inside), torch.cat(outside)
    scale = torch.cat([fin, fout]).amax(0)
    diff = fin.mean(0) - (fout.mean(0) if len(fout) else 0)
    scores = torch.where(scale > 0, diff / scale.clamp_min(1e-12), torch.zeros_like(diff))
    order = torch.argsort(scores, descending=True)[:top]
    return [RankedFeature(int(i), float(scores[i]), f"in {fin[:, i].mean():.2f} out {fout[:, i].mean():.2f}") for i in order]


def norm_gain(lm) -> Tensor:
    """The final norm's per-dimension gain [d] (RMSNorm/LayerNorm weight; Gemma's
    stored weight w acts as 1 + w)."""
    norm = lm.final_norm
    weight = getattr(norm, "weight", None)
    if weight is None:
        return torch.ones(lm.d_model)
    gain = weight.detach().float()
    if "Gemma" in type(norm).__name__:
        gain = 1 + gain
    return gain


def logit_effect_scores(lm, sae, token_ids: Sequence[int]) -> Tensor:
    """[n]: per feature, the mean logit effect W_dec,i · diag(g) · W_Uᵀ on the concept
    tokens, as a z-score against that feature's effect on the whole vocabulary. The
    vocabulary mean and variance come from the unembedding's mean and covariance, so no
    [n, vocab] matrix is formed."""
    U = lm.unembed.detach().float()                                         # [V, d]
    w = sae.W_dec.detach().float() * norm_gain(lm)                          # [n, d]
    mu = U.mean(0)                                                          # [d]
    cov = (U - mu).T @ (U - mu) / U.shape[0]                                # [d, d]
    std = ((w @ cov) * w).sum(1).clamp_min(1e-12).sqrt()                   # [n]
    effect = (w @ U[list(token_ids)].T).mean(1)                             # [n]
    return (effect - w @ mu) / std


def rank_logit_effect(lm, sae, token_ids: Sequence[int], top: int = 20) -> list[RankedFeature]:
    scores = logit_effect_scores(lm, sae, token_ids)
    order = torch.argsort(scores, descending=True)[:top]
    return [RankedFeature(int(i), float(scores[i]), f"z {scores[i]:.1f}") for i in order]


def find_concept_features(lm, sae, layer: int, concept: Concept, top: int = 20, candidates: int = 20,
                          maxes: tuple[Tensor, Tensor] | None = None) -> list[RankedFeature]:
    """The procedure the benchmark uses: the `candidates` best contrastive features,
    those scoring at least half the best one kept, re-ranked by logit effect (z-score)
    toward the concept's tokens. Without tokens, the contrastive ranking. Pass the
    concept's train half (Concept.half("train")) to keep its test half for scoring."""
    contrastive = rank_contrastive(lm, sae, layer, concept.positive, concept.negative, top=candidates, maxes=maxes)
    if not concept.tokens:
        return contrastive[:top]
    # only clearly contrastive candidates: at least half the best score
    contrastive = [r for r in contrastive if r.score >= 0.5 * contrastive[0].score]
    z = logit_effect_scores(lm, sae, concept_token_ids(lm.tokenizer, concept.tokens))
    ranked = [RankedFeature(r.feature, float(z[r.feature]), f"contrastive {r.score:.2f}, {r.detail}; logit z {z[r.feature]:.1f}")
              for r in contrastive]
    return sorted(ranked, key=lambda r: -r.score)[:top]
