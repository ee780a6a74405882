"""Examples for autointerp: the deterministic split of a feature's stored examples
into what the explainer sees and what the scorers see (never the same context), and
their rendering as text with the activating tokens highlighted: `the <<cat>> sat`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..token_text import segments_of

OPEN, CLOSE = "<<", ">>"


@dataclass
class Sample:
    tokens: list[str]
    acts: list[float]  # the feature's activation on each token, >= 0
    level: str  # "top", "interval0".."intervalN" (0 = highest octave), or "negative"
    context_id: int = -1
    position: int = -1

    @property
    def activation(self) -> float:
        return max(self.acts, default=0.0)

    @property
    def active(self) -> bool:
        return self.level != "negative" and self.activation > 0


@dataclass
class ExampleSplit:
    explain: list[Sample]  # what the explainer may read
    score: list[Sample]  # held out: activating examples across levels, then negatives
    problems: list[str] = field(default_factory=list)  # why the split is thin, if it is

    @property
    def ok(self) -> bool:
        return bool(self.explain) and any(s.active for s in self.score)


def _sample(example, level: str) -> Sample:
    """Tokens that split a character become one token of the sample (with their
    strongest activation), so explainers and raters read whole characters."""
    segs = segments_of(example.tokens)
    acts = [max(0.0, *map(float, example.acts[s.start : s.stop])) for s in segs]
    return Sample([s.text for s in segs], acts, level, example.context_id, example.position)


def spread(items: list, n: int | None) -> list:
    """At most n items, evenly spaced over the list (all of them when n is None)."""
    if n is None or len(items) <= n:
        return list(items)
    if n <= 0:
        return []
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def split_examples(feature, min_explain: int = 2, min_score: int = 2, per_level: int | None = None,
                   negatives: int | None = None) -> ExampleSplit:
    """Alternate each section's examples (top, then every interval, in rank order)
    between the explainer and the scorers, so both get every activation level; a
    scoring example whose context the explainer saw is dropped, so the explainer
    never reads scored text. Negatives all go to the scorers. `per_level` and
    `negatives` cap the scoring examples per activation level and the non-activating
    ones (evenly spaced, so a cheap run still covers every level)."""
    explain: list[Sample] = []
    score: list[Sample] = []
    sections = [("top", feature.top)] + [(f"interval{iv.index}", iv.examples) for iv in feature.intervals]
    seen: set[tuple[int, int]] = set()
    for level, examples in sections:
        fresh = [e for e in examples if (e.context_id, e.position) not in seen]
        seen.update((e.context_id, e.position) for e in fresh)
        for i, e in enumerate(fresh):
            (explain if i % 2 == 0 else score).append(_sample(e, level))
    explain_contexts = {s.context_id for s in explain}
    dropped = sum(s.context_id in explain_contexts for s in score)
    score = [s for s in score if s.context_id not in explain_contexts]
    levels = list(dict.fromkeys(s.level for s in score))
    score = [s for level in levels for s in spread([x for x in score if x.level == level], per_level)]
    score += spread([_sample(e, "negative") for e in feature.negatives if e.context_id not in explain_contexts], negatives)
    problems = []
    if dropped:
        problems.append(f"{dropped} scoring examples dropped: their context was shown to the explainer")
    if len(explain) < min_explain:
        problems.append(f"only {len(explain)} examples to explain from")
    if sum(s.active for s in score) < min_score:
        problems.append(f"only {sum(s.active for s in score)} held-out activating examples")
    if not any(s.level == "negative" for s in score):
        problems.append("no non-activating examples")
    return ExampleSplit(explain, score, problems)


def highlighted(sample: Sample, threshold: float = 0.0) -> list[bool]:
    return [a > threshold for a in sample.acts]


def render(tokens: list[str], marks: list[bool] | None = None) -> str:
    """Tokens joined as text, runs of marked tokens wrapped in << >>. A leading space
    stays outside the brackets: `the <<cat>> sat`."""
    marks = marks or [False] * len(tokens)
    out: list[str] = []
    inside = False
    for tok, mark in zip(tokens, marks):
        if mark and not inside:
            stripped = tok.lstrip()
            out.append(tok[: len(tok) - len(stripped)] + OPEN + stripped)
            inside = True
            continue
        if not mark and inside:
            out.append(CLOSE)
            inside = False
        out.append(tok)
    if inside:
        out.append(CLOSE)
    return "".join(out)


def render_sample(sample: Sample, highlight: bool = True, threshold_fraction: float = 0.0) -> str:
    """The sample's text; with highlight, tokens above `threshold_fraction` of the
    sample's own max are marked."""
    if not highlight or not sample.active:
        return render(sample.tokens)
    return render(sample.tokens, highlighted(sample, threshold_fraction * sample.activation))


def fuzzed_marks(sample: Sample, rng: random.Random) -> list[bool]:
    """As many marks as the true highlight, on tokens the feature does not fire on
    (for fuzzing: a wrongly highlighted example)."""
    true = highlighted(sample)
    n = max(1, sum(true))
    off = [i for i, m in enumerate(true) if not m and sample.tokens[i].strip()]
    chosen = set(rng.sample(off, min(n, len(off))))
    return [i in chosen for i in range(len(sample.tokens))]


def activating_tokens(samples: list[Sample], threshold_fraction: float = 0.0) -> list[str]:
    """Each activating token's text (stripped), once per occurrence."""
    out = []
    for s in samples:
        if not s.active:
            continue
        for tok, a in zip(s.tokens, s.acts):
            if a > threshold_fraction * s.activation and a > 0:
                out.append(tok.strip())
    return out
