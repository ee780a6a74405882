"""Simulation: from the explanation alone, the model predicts which tokens of plain
held-out text the feature fires on and how strongly (0-10); the score is the Pearson
correlation, pooled over every token of every scoring example (activating across
levels and non-activating), between predicted and true activations.

The model names words rather than scoring every token (a small chat model cannot
echo 25 tokens with numbers reliably); a token is predicted at the value of the word
it matches, 0 elsewhere."""

from __future__ import annotations

import re

import numpy as np

from ..examples import ExampleSplit, render_sample
from .base import Scorer

SYSTEM = ("You simulate a language-model feature from its explanation. Given the explanation and a text, list the "
          "words of the text where the feature fires, each with its strength from 1 to 10, as 'word: strength', "
          "separated by commas. Reply 'none' if it does not fire.")


def prompt(explanation: str, text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Explanation: {explanation}\nText: {text}\nWords where it fires:"}]


_ITEM = re.compile(r"^(.*?)(?:\s*[:=(\-]\s*(\d+(?:\.\d+)?)\s*\)?)?$")


def parse_predictions(reply: str) -> dict[str, float] | None:
    """{'cat': 10.0, ...} from 'cat: 10, dog (3)', 'cat, dog' or 'none' ({});
    None when the reply is empty."""
    text = reply.strip()
    if not text:
        return None
    if re.fullmatch(r"\W*(none|no|nothing)\W*", text, re.I):
        return {}
    out: dict[str, float] = {}
    for item in re.split(r"[,;\n]", text):
        item = item.strip().strip("-*•\"'`<> ").strip()
        if not item:
            continue
        m = _ITEM.match(item)
        word = m.group(1).strip().strip("\"'`<>*").strip().lower()
        if not word or word in ("none", "words where it fires"):
            continue
        value = float(m.group(2)) if m.group(2) else 10.0
        out[word] = max(out.get(word, 0.0), min(value, 10.0))
    return out


def predict_tokens(tokens: list[str], words: dict[str, float]) -> list[float]:
    preds = []
    for tok in tokens:
        t = tok.strip().lower()
        value = 0.0
        if t:
            for word, v in words.items():
                if t == word or (len(t) >= 3 and t in word.split()) or (len(t) >= 4 and t in word):
                    value = max(value, v)
        preds.append(value)
    return preds


def correlation(a, b) -> float | None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


class SimulationScorer(Scorer):
    name = "simulation"
    max_tokens = 48
    prompt = staticmethod(prompt)

    def items(self, split: ExampleSplit):
        return [(s, render_sample(s, highlight=False)) for s in split.score]

    def parse(self, reply: str):
        return parse_predictions(reply)

    def summarise(self, answered):
        true, pred = [], []
        for s, words in answered:
            true.extend(s.acts)
            pred.extend(predict_tokens(s.tokens, words))
        corr = correlation(pred, true)
        details = {"n_tokens": len(true), "n_predicted_active": int(sum(p > 0 for p in pred))}
        if corr is None:
            # constant predictions (e.g. 'none' everywhere) carry no information: score 0
            details["note"] = "predictions or activations constant: correlation undefined, scored 0"
            corr = 0.0 if true else None
        if corr is None:
            details["error"] = "no reply could be read"
        return corr, details
