"""A synthetic feature whose answer is known: it fires exactly on the token " cat"
(strongly in its top examples, weaker in each lower interval) and nowhere else; its
non-activating examples contain no " cat"."""

from __future__ import annotations

import random

from monosemantic.features.db import Example, Feature, Interval

WORDS = [" the", " dog", " sat", " on", " a", " mat", " and", " ran", " home", " bird", " tree", " red", " big", " small"]


def _example(rng: random.Random, ctx: int, activation: float, with_cat: bool) -> Example:
    tokens = [rng.choice(WORDS) for _ in range(12)]
    acts = [0.0] * len(tokens)
    if with_cat:
        for i in rng.sample(range(1, len(tokens)), 2):
            tokens[i], acts[i] = " cat", activation
    return Example(ctx, 0, activation if with_cat else 0.0, 0, list(range(len(tokens))), acts, tokens)


def cat_feature(seed: int = 0, n_top: int = 10, n_intervals: int = 4, per_interval: int = 4, n_negative: int = 4) -> Feature:
    rng = random.Random(seed)
    ctx = iter(range(10_000))
    f = Feature(0, "feature", 100, 0.01, 8.0, 3.0)
    f.top = [_example(rng, next(ctx), 8.0 - 0.1 * i, True) for i in range(n_top)]
    for q in range(n_intervals):
        hi = 8.0 / 2**q
        f.intervals.append(Interval(q, hi / 2, hi, [_example(rng, next(ctx), hi * 0.75, True) for _ in range(per_interval)]))
    f.negatives = [_example(rng, next(ctx), 0.0, False) for _ in range(n_negative)]
    return f
