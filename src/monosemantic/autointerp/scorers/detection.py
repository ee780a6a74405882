"""Detection: shown plain held-out text (no highlights), does the feature described
fire anywhere in it? Activating examples across levels against non-activating ones;
the score is balanced accuracy (0.5 = chance), undefined (a recorded failure) without
both classes: a dense feature with no non-activating context cannot be scored."""

from __future__ import annotations

from ..examples import ExampleSplit, render_sample
from .base import Scorer, balanced_accuracy, parse_yes_no

SYSTEM = ("You check explanations of a language-model feature. Given the explanation and one text, answer 1 if the "
          "feature described would fire somewhere in the text, 0 if not. Reply with one digit.")


def prompt(explanation: str, text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Explanation: {explanation}\nText: {text}\nDoes the feature fire (1 or 0)?"}]


class DetectionScorer(Scorer):
    name = "detection"
    max_tokens = 8
    choices = ["0", "1"]
    prompt = staticmethod(prompt)

    def items(self, split: ExampleSplit):
        return [(s.active, render_sample(s, highlight=False)) for s in split.score]

    def parse(self, reply: str):
        return parse_yes_no(reply)

    def summarise(self, answered):
        labels = [label for label, _ in answered]
        preds = [answer for _, answer in answered]
        details = {"n_pos": sum(labels), "n_neg": len(labels) - sum(labels),
                   "tpr": _rate(labels, preds, True), "tnr": _rate(labels, preds, False)}
        score = balanced_accuracy(labels, preds) if len(set(labels)) == 2 else None
        if not labels:
            details["error"] = "no reply could be read"
        elif score is None:
            # one rate alone rewards answering "yes" (or "no") to everything
            details["error"] = ("no non-activating example (a dense feature: no context without it)" if labels[0]
                                else "no activating example could be read")
        return score, details


def _rate(labels, preds, cls):
    hits = [p == cls for l, p in zip(labels, preds) if l == cls]
    return sum(hits) / len(hits) if hits else None
