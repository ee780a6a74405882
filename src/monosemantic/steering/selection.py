"""Choosing features to steer with by what they do to the output, not by what they
read (Arad, Mueller & Belinkov 2025, "SAEs are good for steering if you select the
right features": features that fire on a concept are often poor steerers of it).

Output score of feature i for a concept, from the gains in mean per-token
log-probability of the concept's positive and negative texts when its decoder
direction is added (`strength` x its max activation, at every position after the
BOS-like token):

    score_i = min(gain_pos, gain_pos − gain_neg)

so a feature must make the concept's texts more likely, and more so than the others.
The plain difference gain_pos − gain_neg is not enough: on the main run it was led by
directions that wreck all text and the negatives a little more (positives −1.0,
negatives −3.6 nats/token), which steered to loops ("or or or or").
Candidates are the best contrastive features (input score) and the best by decoder
logit effect toward the concept's words; each costs one batched forward over the
texts (the first `TEXTS_PER_SIDE` of each side, cut at `MAX_TEXT_TOKENS`, after the
BOS alone rather than a chat prompt: a third of the tokens, and on the main run a
candidate costs ~2 s). Use the texts of one half of a concept set here and judge on
the other (benchmarks/steering.py): this module only ever sees the half it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .concepts import Concept, concept_token_ids, logit_effect_scores, rank_contrastive

SCORING_STRENGTH = 1.0     # x max activation: where steered text still reads (docs/steering.md)
MAX_TEXT_TOKENS = 16       # each text is cut here: the first tokens carry its topic, and the cost is linear in them
TEXTS_PER_SIDE = 6         # positives and negatives scored per candidate


@dataclass(frozen=True)
class OutputScore:
    feature: int
    score: float         # min(gain on positives, gain on positives − gain on negatives), nats per token
    positive_gain: float
    negative_gain: float

    @property
    def detail(self) -> str:
        return f"output {self.score:+.3f} (positives {self.positive_gain:+.3f}, negatives {self.negative_gain:+.3f} nats/token)"


def _answer_batch(lm, prompt_ids: Tensor, texts: Sequence[str], max_tokens: int) -> tuple[Tensor, Tensor]:
    """[n, P + L] ids of prompt + each text (right-padded) and the [n, P + L] mask."""
    tok = lm.tokenizer
    rows = [prompt_ids[0].tolist() + tok(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    width = max(map(len, rows))
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


@torch.no_grad()
def answer_logprobs(lm, layer: int, prompt_ids: Tensor | None, texts: Sequence[str], direction: Tensor | None = None,
                    max_tokens: int = MAX_TEXT_TOKENS) -> Tensor:
    """[n] mean log-probability per token of each text after the prompt ([1, P] ids;
    None: the BOS-like token alone), with `direction` [d] added to the residual after
    `layer` at the positions that predict the text (the prompt's last token onward,
    never position 0, the attention sink)."""
    if not texts:
        raise ConfigError("no texts to score")
    if prompt_ids is None:
        prompt_ids = torch.tensor([[lm.bos_id]])
    ids, mask = _answer_batch(lm, prompt_ids, texts, max_tokens)
    P = prompt_ids.shape[1]

    def add(hidden: Tensor) -> Tensor:                                      # [n, T, d]
        out = hidden.float().clone()
        out[:, max(P - 1, 1):] += direction.to(out.device)
        return out

    dev = lm.device
    if direction is None:
        logits = lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
    else:
        with lm.patch_residual(layer, add):
            logits = lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
    lp = torch.log_softmax(logits[:, P - 1:-1].float(), -1)                 # [n, L, V], predicting each answer token
    tok_lp = lp.gather(-1, ids[:, P:, None].to(lp.device))[..., 0].cpu()    # [n, L]
    m = mask[:, P:].float()
    return (tok_lp * m).sum(1) / m.sum(1).clamp_min(1)


def output_scores(lm, sae, layer: int, concept: Concept, features: Sequence[int], max_acts: Tensor,
                  strength: float = SCORING_STRENGTH, per_side: int = TEXTS_PER_SIDE) -> list[OutputScore]:
    """Each feature's output score (module docstring), best first."""
    if not concept.positive or not concept.negative:
        raise ConfigError(f"concept {concept.name!r}: output scores need positive and negative texts")
    pos_texts, neg_texts = list(concept.positive)[:per_side], list(concept.negative)[:per_side]
    texts, n_pos = pos_texts + neg_texts, len(pos_texts)
    base = answer_logprobs(lm, layer, None, texts)                          # [n]
    out = []
    for f in features:
        a = float(max_acts[f])
        if a <= 0:
            continue                                                        # never fired: no unit to steer in
        gain = answer_logprobs(lm, layer, None, texts, strength * a * sae.W_dec[f].detach().float()) - base
        pos, neg = float(gain[:n_pos].mean()), float(gain[n_pos:].mean())
        out.append(OutputScore(int(f), min(pos, pos - neg), pos, neg))
    return sorted(out, key=lambda s: -s.score)


def steering_candidates(lm, sae, layer: int, concept: Concept, n: int = 12) -> list[int]:
    """The `n` best contrastive features, then up to n/3 more by logit effect toward
    the concept's words (features that write the concept without reading it)."""
    ids = [r.feature for r in rank_contrastive(lm, sae, layer, concept.positive, concept.negative, top=n)]
    if concept.tokens:
        z = logit_effect_scores(lm, sae, concept_token_ids(lm.tokenizer, concept.tokens))
        ids += [int(i) for i in torch.argsort(z, descending=True)[: max(1, n // 3)] if int(i) not in ids]
    return ids


def find_steering_features(lm, sae, layer: int, concept: Concept, max_acts: Tensor, top: int = 3,
                           candidates: int = 12, strength: float = SCORING_STRENGTH) -> list[OutputScore]:
    """The procedure the benchmark and `monosemantic concept --steering` use."""
    if max_acts is None:
        raise ConfigError("choosing steering features needs each feature's max activation: build features.db first "
                          "(`monosemantic features RUN`)")
    feats = steering_candidates(lm, sae, layer, concept, candidates)
    return output_scores(lm, sae, layer, concept, feats, max_acts, strength)[:top]
