"""Fuzzing: held-out activating examples, alternately with their true highlights and
with the same number of highlights on tokens the feature does not fire on
(non-activating examples always wrongly highlighted); is the highlighting what the
explanation describes? Balanced accuracy (0.5 = chance)."""

from __future__ import annotations

import random

from ..examples import ExampleSplit, fuzzed_marks, highlighted, render
from .base import Scorer, balanced_accuracy, parse_yes_no

SYSTEM = ("You check explanations of a language-model feature. In the text, some tokens are marked <<like this>>. "
          "Answer 1 if the marked tokens are exactly what the explanation describes, 0 if the marks are on the "
          "wrong tokens. Reply with one digit.")


def prompt(explanation: str, text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Explanation: {explanation}\nText: {text}\nAre the marks correct (1 or 0)?"}]


class FuzzingScorer(Scorer):
    name = "fuzzing"
    max_tokens = 8
    choices = ["0", "1"]
    prompt = staticmethod(prompt)

    def __init__(self, seed: int = 0):
        self.seed = seed

    def items(self, split: ExampleSplit):
        rng = random.Random(self.seed)
        out = []
        i = 0
        for s in split.score:
            correct = s.active and i % 2 == 0
            i += s.active
            marks = highlighted(s) if correct else fuzzed_marks(s, rng)
            out.append((correct, render(s.tokens, marks)))
        return out

    def parse(self, reply: str):
        return parse_yes_no(reply)

    def summarise(self, answered):
        kept_labels = [label for label, _ in answered]
        preds = [answer for _, answer in answered]
        score = balanced_accuracy(kept_labels, preds) if len(set(kept_labels)) == 2 else None
        details = {"n_correct_marks": sum(kept_labels), "n_wrong_marks": len(kept_labels) - sum(kept_labels)}
        if score is None:
            details["error"] = "no reply could be read" if not kept_labels else "only one class of marks could be scored"
        return score, details
