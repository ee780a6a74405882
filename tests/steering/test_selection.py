"""Choosing steering features by output effect (steering/selection.py), and the judge
on what a planted feature makes a real model write: on the embedded model's last
layer, a decoder direction made to raise the concept words' logits must outrank
random directions, both by output score and by the judge reading the generated text
(issue 17's done-when). The tiny random models cannot serve: their unembedding is so
small that no direction moves their next-token distribution visibly."""

from __future__ import annotations

import pytest
import torch
from steering_helpers import random_sae

from monosemantic.steering import Intervention, steer
from monosemantic.steering.concepts import Concept, concept_token_ids, norm_gain
from monosemantic.steering.generate import encode_prompt, sample_ids
from monosemantic.steering.judge import ConceptJudge, perplexity
from monosemantic.steering.selection import answer_logprobs, output_scores

WORDS = ["cat", "dog", "horse", "bird"]
# texts made mostly of the concept words, so that a push toward those words' logits makes them likelier as a whole
POSITIVE = ["cat dog horse bird", "dog cat bird horse cat", "bird horse dog", "horse cat dog bird dog"]
NEGATIVE = ["table chair spoon cup", "cup plate door wall", "road car door", "wall table cup chair plate"]
PLANTED, N = 5, 8


@pytest.fixture(scope="module")
def planted(embedded_lm):
    return plant(embedded_lm)


def plant(lm):
    """A real ReLU SAE on the model's last block whose row PLANTED points, through the
    final norm's gain and the unembedding, at the concept words; the other rows are
    random directions of the same norm."""
    layer = lm.n_layers - 1
    sae = random_sae(lm.d_model, N, seed=1)
    ids = concept_token_ids(lm.tokenizer, WORDS)
    U = lm.unembed.detach().float()                                         # [V, d]
    target = torch.zeros(U.shape[0])
    target[ids] = 1.0                                                       # [V]: raise these logits, leave the rest
    toward = torch.linalg.lstsq(U, (target - target.mean())[:, None]).solution[:, 0] / norm_gain(lm)  # [d], before the final norm's gain
    x = lm.residual(torch.tensor([[lm.bos_id] + lm.tokenizer("It was a quiet day", add_special_tokens=False)["input_ids"]]), layer)[0, 1:].float()
    norm = 2 * float(x.norm(dim=-1).mean())                                 # above the residual: the push shows
    with torch.no_grad():
        sae.W_dec.copy_(torch.nn.functional.normalize(sae.W_dec, dim=1) * norm)
        sae.W_dec[PLANTED] = toward / toward.norm() * norm
    return lm, sae, layer


def test_answer_logprobs_rises_for_the_texts_the_direction_favours(planted):
    lm, sae, layer = planted
    base = answer_logprobs(lm, layer, None, POSITIVE + NEGATIVE)
    gain = answer_logprobs(lm, layer, None, POSITIVE + NEGATIVE, sae.W_dec[PLANTED]) - base
    assert gain[:4].mean() > gain[4:].mean() + 0.5
    torch.testing.assert_close(answer_logprobs(lm, layer, None, POSITIVE, torch.zeros(lm.d_model)),
                               base[:4], atol=1e-5, rtol=1e-5)


def test_output_score_puts_the_planted_feature_first(planted):
    lm, sae, layer = planted
    concept = Concept("animals", POSITIVE, NEGATIVE, WORDS)
    scores = output_scores(lm, sae, layer, concept, list(range(N)), torch.ones(N), strength=0.25)
    assert scores[0].feature == PLANTED and scores[0].score > scores[1].score + 0.5
    # a feature that never fired has no unit to steer in and is left out
    dead = torch.ones(N)
    dead[PLANTED] = 0
    assert [s.feature for s in output_scores(lm, sae, layer, concept, [PLANTED, 0], dead)] == [0]


def test_judge_ranks_planted_concept_word_boost_above_random(planted):
    """The judge reads the generated text: completions steered along the planted row
    contain the concept words (on concept); along random rows they do not."""
    from monosemantic.models.sentence import SentenceEmbedder

    lm, sae, layer = planted
    judge = ConceptJudge(SentenceEmbedder(), POSITIVE, NEGATIVE, WORDS)
    prompt, _ = encode_prompt(lm, "Tell me about your weekend.", chat=False)

    def on_concept(feature: int) -> float:
        with steer(lm, sae, layer, [Intervention(feature, "add", 1.0)], positions="generated"):
            rows = sample_ids(lm, prompt, 8, seed=0, temperature=0.7, n=4)
        verdicts = judge.judge(lm, prompt, rows, [perplexity(lm, prompt, r) for r in rows])
        return sum(v.on_concept for v in verdicts) / len(verdicts)

    planted_rate = on_concept(PLANTED)
    random_rates = [on_concept(f) for f in (0, 1)]
    assert planted_rate >= 0.75 and planted_rate > max(random_rates)
