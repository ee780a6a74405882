"""Choosing features to steer with by what they do to the output, not by what they
read (Arad, Mueller & Belinkov 2025, "SAEs are good for steering if you select the
right features": features that fire on a concept are often poor steerers of it).

Output score of feature i for a concept = how much adding its decoder direction
(`strength` x its max activation, at the positions that produce the answer) raises
the mean per-token log-probability of the concept's positive texts as the answer to
a neutral prompt, minus how much it raises that of the negative texts:

    score_i = Δ log p(positives | prompt; +s·a_i·W_dec,i) − Δ log p(negatives | ...)

The difference cancels what any strong push does to every text (a direction that
wrecks the model lowers both), so what remains is the push toward the concept.
Candidates are the best contrastive features (input score) and the best by decoder
logit effect toward the concept's words; each costs one batched forward over the
texts. Use the texts of one half of a concept set here and judge on the other
(benchmarks/steering.py): this module only ever sees the half it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..errors import ConfigError
from .concepts import Concept, concept_token_ids, logit_effect_scores, rank_contrastive
from .generate import encode_prompt

# The prompt the texts answer while a feature is scored: not one of the benchmark's
# judging prompts, so the choice is not tuned to them.
SCORING_PROMPT = "Write a few sentences."
SCORING_STRENGTH = 2.0     # x max activation; the middle of the range where text survives (docs/steering.md)
MAX_TEXT_TOKENS = 24       # each text is cut here: the first tokens carry its topic, and the cost is linear in them


@dataclass(frozen=True)
class OutputScore:
    feature: int
    score: float         # gain on positives − gain on negatives, nats per token
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
def answer_logprobs(lm, layer: int, prompt_ids: Tensor, texts: Sequence[str], direction: Tensor | None = None,
                    max_tokens: int = MAX_TEXT_TOKENS) -> Tensor:
    """[n] mean log-probability per token of each text as the answer to the prompt
    ([1, P] ids), with `direction` [d] added to the residual after `layer` at the
    positions that predict the answer (the prompt's last token onward)."""
    if not texts:
        raise ConfigError("no texts to score")
    ids, mask = _answer_batch(lm, prompt_ids, texts, max_tokens)
    P = prompt_ids.shape[1]

    def add(hidden: Tensor) -> Tensor:                                      # [n, T, d]
        out = hidden.float().clone()
        out[:, P - 1:] += direction.to(out.device)
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
                  strength: float = SCORING_STRENGTH, prompt: str = SCORING_PROMPT) -> list[OutputScore]:
    """Each feature's output score (module docstring), best first."""
    if not concept.positive or not concept.negative:
        raise ConfigError(f"concept {concept.name!r}: output scores need positive and negative texts")
    prompt_ids, _ = encode_prompt(lm, prompt)
    texts = list(concept.positive) + list(concept.negative)
    n_pos = len(concept.positive)
    base = answer_logprobs(lm, layer, prompt_ids, texts)                    # [n]
    out = []
    for f in features:
        a = float(max_acts[f])
        if a <= 0:
            continue                                                        # never fired: no unit to steer in
        gain = answer_logprobs(lm, layer, prompt_ids, texts, strength * a * sae.W_dec[f].detach().float()) - base
        pos, neg = float(gain[:n_pos].mean()), float(gain[n_pos:].mean())
        out.append(OutputScore(int(f), pos - neg, pos, neg))
    return sorted(out, key=lambda s: -s.score)


def steering_candidates(lm, sae, layer: int, concept: Concept, n: int = 24) -> list[int]:
    """The `n` best contrastive features, then up to n/3 more by logit effect toward
    the concept's words (features that write the concept without reading it)."""
    ids = [r.feature for r in rank_contrastive(lm, sae, layer, concept.positive, concept.negative, top=n)]
    if concept.tokens:
        z = logit_effect_scores(lm, sae, concept_token_ids(lm.tokenizer, concept.tokens))
        ids += [int(i) for i in torch.argsort(z, descending=True)[: max(1, n // 3)] if int(i) not in ids]
    return ids


def find_steering_features(lm, sae, layer: int, concept: Concept, max_acts: Tensor, top: int = 3,
                           candidates: int = 24, strength: float = SCORING_STRENGTH) -> list[OutputScore]:
    """The procedure the benchmark and `monosemantic concept --steering` use."""
    if max_acts is None:
        raise ConfigError("choosing steering features needs each feature's max activation: build features.db first "
                          "(`monosemantic features RUN`)")
    feats = steering_candidates(lm, sae, layer, concept, candidates)
    return output_scores(lm, sae, layer, concept, feats, max_acts, strength)[:top]
