"""The paper's specificity rubric: for held-out text sampled across activation levels,
a rater says how well the explanation identifies the highlighted text, 0-3; the score
is the mean over activation levels of each level's mean rating (so the many weak
examples count as much as the few strong ones). Negatives are rated too, reported
apart (lower is better) and not in the score."""

from __future__ import annotations

from collections import defaultdict

from ..examples import ExampleSplit, render_sample
from .base import Scorer, parse_rating

SYSTEM = ("You rate explanations of a language-model feature. Tokens where the feature fires are marked <<like this>>. "
          "Given the explanation and one text, rate how well the explanation describes the marked text:\n"
          "0 - the explanation is unrelated to the text;\n"
          "1 - related to the text, but not near the marked tokens;\n"
          "2 - loosely related to the marked tokens;\n"
          "3 - cleanly identifies the marked tokens.\n"
          "Reply with one digit.")


def prompt(explanation: str, text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Explanation: {explanation}\nText: {text}\nRating (0-3):"}]


class RubricScorer(Scorer):
    name = "rubric"
    max_tokens = 8
    choices = ["0", "1", "2", "3"]
    prompt = staticmethod(prompt)

    def items(self, split: ExampleSplit):
        return [(s.level, render_sample(s)) for s in split.score]

    def parse(self, reply: str):
        return parse_rating(reply)

    def summarise(self, answered):
        by_level: dict[str, list[int]] = defaultdict(list)
        for level, rating in answered:
            by_level["negative" if level == "negative" else level].append(rating)
        level_means = {k: sum(v) / len(v) for k, v in by_level.items()}
        active = [v for k, v in level_means.items() if k != "negative"]
        score = sum(active) / len(active) if active else None
        details = {"per_level": level_means, "n_rated": sum(len(v) for v in by_level.values())}
        if score is None:
            details["error"] = "no activating example could be rated"
        return score, details
