"""Judging a steered completion on its text, with no large LLM: is it on the concept,
and is it still language?

- On concept: the completion's sentence embedding (all-MiniLM-L6-v2, offline) is
  closer to the concept's held-out positive texts than to its held-out negative
  texts by at least `margin` (cosine to each set's centroid), or it contains one of
  the concept's words (whole word, any case).
- Fluent: its perplexity under the *unsteered* model, given the prompt, is at most
  `max_perplexity`, and at most `max_repeated` of its token trigrams repeat an
  earlier one (a loop like "I, I, I, ..." is likely under the model once started,
  so perplexity alone lets it pass); it is words: at least `min_letters` of its
  non-space characters are letters (a digit string like "1222318120002 2221" has a
  low perplexity and no repeated trigram, and passed before this rule), and no one
  word makes up more than `max_word_share` of a text of 8 words or more ("if you if
  it if it if you it if it" repeats words, not trigrams of tokens).
- Success = on concept and fluent.
- Calibrated to the prompt (`baseline_texts`, the unsteered model's answers to the
  same prompts): the margin counts above the baseline's mean margin (when that is
  positive), and a concept word the baseline already uses, or a function word
  ("all", "always"), does not count. Without it, generic chat text was "on concept"
  for flattery (unsteered answers: margin 0.18, all of them on concept; even
  "Jterjapjjvjrjjjanjvjan" had 0.13) and any text with "all" was about bias.

The texts used to judge must not be the ones a feature was chosen on
(benchmarks/steering.py splits each concept set in two). Thresholds were set on the
main run's unsteered completions (docs/steering.md): a plain sampled answer of the
135M model has perplexity 2-12 and under 10 % repeated trigrams.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class JudgeThresholds:
    margin: float = 0.1           # cos(centroid of positives) − cos(centroid of negatives)
    max_perplexity: float = 25.0  # under the unsteered model, completion tokens only
    max_repeated: float = 0.3     # fraction of token trigrams seen before in the same text
    min_letters: float = 0.5      # fraction of non-space characters that are letters (any script)
    max_word_share: float = 0.25  # the most frequent word's share of the words (texts of >= 8 words)


class Verdict(NamedTuple):
    text: str
    margin: float                 # embedding margin toward the concept
    words: tuple[str, ...]        # concept words found in the text
    perplexity: float
    repeated: float
    on_concept: bool
    fluent: bool
    letters: float = 1.0          # fraction of non-space characters that are letters
    word_share: float = 0.0       # the most frequent word's share of the words

    @property
    def success(self) -> bool:
        return self.on_concept and self.fluent


def repeated_fraction(ids: Sequence[int], n: int = 3) -> float:
    """Fraction of the n-grams of `ids` that already occurred earlier in it."""
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def letter_fraction(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def top_word_share(text: str, min_words: int = 8) -> float:
    """The most frequent word's share of the words, 0 for texts under `min_words` words."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < min_words:
        return 0.0
    return max(words.count(w) for w in set(words)) / len(words)


def words_in(text: str, words: Sequence[str]) -> tuple[str, ...]:
    return tuple(w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE))


@torch.no_grad()
def perplexity(lm, prompt_ids: torch.Tensor, completion_ids: Sequence[int]) -> float:
    """exp(mean NLL) of the completion tokens after the prompt ([1, P] ids), under
    the model as it is (call it outside any `steer` block)."""
    if len(completion_ids) == 0:
        return math.inf
    ids = torch.cat([prompt_ids[0], torch.tensor(list(completion_ids), dtype=prompt_ids.dtype)])[None]  # [1, P + C]
    logits = lm.logits(ids.to(lm.device))[0, prompt_ids.shape[1] - 1 : -1].float()  # [C, V], predicting each completion token
    nll = F.cross_entropy(logits, ids[0, prompt_ids.shape[1]:].to(logits.device))
    return float(nll.exp())


# words too common in any answer to say anything about a concept
FUNCTION_WORDS = frozenset("all always never any some every each most many more very just only also so such "
                           "one ones the a an and or but not no yes it its this that these those".split())


class ConceptJudge:
    """One concept: its held-out positive and negative texts and its words; optionally
    calibrated on the unsteered answers to the same prompts (module docstring)."""

    def __init__(self, embedder, positives: Sequence[str], negatives: Sequence[str], words: Sequence[str],
                 thresholds: JudgeThresholds = JudgeThresholds(), baseline_texts: Sequence[str] = ()):
        if not positives or not negatives:
            raise ValueError("a concept judge needs held-out positive and negative texts")
        self.embedder, self.thresholds = embedder, thresholds
        self.pos = F.normalize(embedder.embed(list(positives)).mean(0), dim=0)   # [384]
        self.neg = F.normalize(embedder.embed(list(negatives)).mean(0), dim=0)   # [384]
        self.offset = 0.0
        if baseline_texts:
            self.offset = max(0.0, float(self.raw_margins(baseline_texts).mean()))
        used = {w for w in words if words_in(" ".join(baseline_texts), [w])}
        self.words = [w for w in words if w.lower() not in FUNCTION_WORDS and w not in used]

    def raw_margins(self, texts: Sequence[str]) -> torch.Tensor:
        e = self.embedder.embed(list(texts))                                     # [n, 384], unit
        return e @ self.pos - e @ self.neg                                       # [n]

    def margins(self, texts: Sequence[str]) -> torch.Tensor:
        """cos(positives) − cos(negatives), less the baseline's mean when calibrated."""
        return self.raw_margins(texts) - self.offset

    def judge(self, lm, prompt_ids: torch.Tensor, completions: Sequence[Sequence[int]],
              perplexities: Sequence[float] | None = None) -> list[Verdict]:
        """completions: generated token ids (no prompt). `perplexities` may be passed
        when the same completions are judged against several concepts."""
        texts = [lm.tokenizer.decode(list(c), skip_special_tokens=True) for c in completions]
        ppl = list(perplexities) if perplexities is not None else [perplexity(lm, prompt_ids, c) for c in completions]
        margins = self.margins(texts).tolist()
        t = self.thresholds
        out = []
        for text, ids, m, p in zip(texts, completions, margins, ppl):
            found = words_in(text, self.words)
            rep = repeated_fraction(list(ids))
            letters, share = letter_fraction(text), top_word_share(text)
            fluent = p <= t.max_perplexity and rep <= t.max_repeated and letters >= t.min_letters and share <= t.max_word_share
            out.append(Verdict(text, m, found, p, rep, on_concept=bool(found) or m >= t.margin, fluent=fluent,
                               letters=letters, word_share=share))
        return out
