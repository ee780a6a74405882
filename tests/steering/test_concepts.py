from __future__ import annotations

import pytest
import torch
from steering_helpers import random_sae

from monosemantic.errors import ConfigError
from monosemantic.steering import concept_names, load_concept, rank_contrastive, rank_logit_effect, rank_span
from monosemantic.steering.concepts import concept_token_ids, contrastive_scores, logit_effect_scores, split_span

LAYER = 1


def test_shipped_concepts():
    names = concept_names()
    assert len(names) >= 9 and {"code_bugs", "flattery", "paris"} <= set(names)
    for name in names:
        c = load_concept(name)
        assert len(c.positive) >= 5 and len(c.negative) >= 5 and c.tokens, name
    with pytest.raises(ConfigError, match="unknown concept"):
        load_concept("no-such-concept")


def test_contrastive_scores_synthetic():
    pos = torch.tensor([[5.0, 1.0, 0.0, 2.0], [4.0, 1.0, 0.0, 2.0]])
    neg = torch.tensor([[0.0, 1.0, 3.0, 2.0], [0.0, 1.0, 3.0, 0.0]])
    s = contrastive_scores(pos, neg)
    assert int(s.argmax()) == 0 and float(s[0]) == pytest.approx(0.9)
    assert float(s[1]) == 0 and float(s[2]) < 0 and float(s[3]) == pytest.approx(0.5)


def test_rank_contrastive_finds_planted_feature(lm):
    """Feature 0 reads the direction the residual takes on ' cat': it must top the ranking."""
    sae = random_sae(lm.d_model, 32, bias=-1.0)
    cat = lm.residual(torch.tensor([[lm.bos_id] + lm.tokenizer(" cat", add_special_tokens=False)["input_ids"]]), LAYER)[0, -1]
    with torch.no_grad():
        direction = cat / cat.norm()
        sae.W_enc[:, 0] = direction * 10
        sae.b_enc[0] = -0.9 * 10 * float(cat.norm())
    ranked = rank_contrastive(lm, sae, LAYER, ["the cat", "a cat sat"], ["the dog", "a bird sat"], top=3)
    assert ranked[0].feature == 0 and ranked[0].score > 0.4


def test_split_span(tokenizer):
    ids, mask = split_span(tokenizer, "I went to [[Paris]] last year")
    inside = [i for i, m in zip(ids, mask) if m]
    assert tokenizer.decode(inside).strip() == "Paris" and not mask[0] and not mask[-1]
    with pytest.raises(ConfigError, match="highlighted"):
        split_span(tokenizer, "no marks here")


def test_rank_span_and_logit_effect(lm):
    sae = random_sae(lm.d_model, 32)
    assert len(rank_span(lm, sae, LAYER, ["the [[cat]] sat", "a [[dog]] ran"], top=5)) == 5
    toks = concept_token_ids(lm.tokenizer, ["cat", "dog"])
    with torch.no_grad():
        sae.W_dec[9] = lm.unembed[toks].float().mean(0) * 5               # a decoder row pointing at the tokens
    z = logit_effect_scores(lm, sae, toks)
    assert rank_logit_effect(lm, sae, toks, top=1)[0].feature == 9
    # z-score agrees with a direct computation over the whole vocabulary
    w = sae.W_dec[9] * lm.final_norm.weight.float()
    logits = lm.unembed.float() @ w
    expected = (logits[toks].mean() - logits.mean()) / logits.std(unbiased=False)
    assert float(z[9]) == pytest.approx(float(expected), rel=1e-3)
