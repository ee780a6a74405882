"""Detection: shown plain held-out text (no highlights), does the feature described
fire anywhere in it? Activating examples across levels against non-activating ones;
the score is balanced accuracy (0.5 = chance), undefined (a recorded failure) without
both classes: a dense feature with no non-activating context cannot be scored."""

from __future__ import annotations

from ..examples import ExampleSplit, render_sample
from .base import ScoreResult, ask_all, balanced_accuracy, parse_yes_no

SYSTEM = ("You check explanations of a language-model feature. Given the explanation and one text, answer 1 if the "
          "feature described would fire somewhere in the text, 0 if not. Reply with one digit.")


def prompt(explanation: str, text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Explanation: {explanation}\nText: {text}\nDoes the feature fire (1 or 0)?"}]


class DetectionScorer:
    name = "detection"
    max_tokens = 8
    choices = ["0", "1"]

    async def score(self, explanation: str, split: ExampleSplit, client) -> ScoreResult:
        samples = split.score
        replies = await ask_all(client, [prompt(explanation, render_sample(s, highlight=False)) for s in samples], self.max_tokens, self.choices)
        labels, preds, failures = [], [], 0
        for s, reply in zip(samples, replies):
            answer = parse_yes_no(reply) if reply is not None else None
            if answer is None:
                failures += 1
                continue
            labels.append(s.active)
            preds.append(answer)
        details = {"n_pos": sum(labels), "n_neg": len(labels) - sum(labels),
                   "tpr": _rate(labels, preds, True), "tnr": _rate(labels, preds, False)}
        score = balanced_accuracy(labels, preds) if len(set(labels)) == 2 else None
        if not labels:
            details["error"] = "no reply could be read"
        elif score is None:
            # one rate alone rewards answering "yes" (or "no") to everything
            details["error"] = ("no non-activating example (a dense feature: no context without it)" if labels[0]
                                else "no activating example could be read")
        return ScoreResult(self.name, score, details, failures, len(samples))


def _rate(labels, preds, cls):
    hits = [p == cls for l, p in zip(labels, preds) if l == cls]
    return sum(hits) / len(hits) if hits else None
