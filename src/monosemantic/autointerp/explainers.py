"""Explainers: a feature's explain-side examples -> one sentence. `LLMExplainer`
prompts a chat model with highlighted examples; `TokenExplainer` is the model-free
baseline (the most frequent activating tokens), so every step runs offline."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .examples import Sample, activating_tokens, render_sample


@dataclass
class Explanation:
    text: str
    ok: bool = True  # False: the reply could not be read as an explanation
    raw: str = ""  # the model's reply, for the record
    tokens: list[str] | None = None  # TokenExplainer: the tokens it names


class TokenExplainer:
    """'Fires on the tokens "cat", "dog"': the k most frequent activating tokens of the
    explain examples (tokens at >= half the example's max count)."""

    name = "tokens"

    def __init__(self, k: int = 5, threshold_fraction: float = 0.5):
        self.k, self.threshold_fraction = k, threshold_fraction

    async def explain(self, samples: list[Sample], client=None) -> Explanation:
        counts = Counter(t for t in activating_tokens(samples, self.threshold_fraction) if t)
        if not counts:
            counts = Counter(repr(t)[1:-1] for t in activating_tokens(samples, self.threshold_fraction))
        if not counts:
            return Explanation("(no activating tokens)", ok=False)
        top = [t for t, _ in counts.most_common(self.k)]
        return Explanation("Fires on the tokens " + ", ".join(f'"{t}"' for t in top) + ".", tokens=top)


SYSTEM = ("You are a meticulous AI researcher explaining features of a language model. You will see text excerpts; "
          "the tokens where the feature is active are marked <<like this>>. Say in one short sentence what the "
          "marked tokens have in common, including the context they need. Reply with the sentence only.")


class LLMExplainer:
    name = "llm"

    def __init__(self, max_examples: int = 12, max_tokens: int = 60):
        self.max_examples, self.max_tokens = max_examples, max_tokens

    def choose(self, samples: list[Sample]) -> list[Sample]:
        """Up to max_examples: the top examples fill half, the rest are taken in turn
        from each lower activation level, so the explanation is not about the top only."""
        active = [s for s in samples if s.active]
        top = [s for s in active if s.level == "top"][: max(1, self.max_examples // 2)]
        lower: dict[str, list[Sample]] = {}
        for s in active:
            if s.level != "top":
                lower.setdefault(s.level, []).append(s)
        chosen, queues = list(top), [list(v) for v in lower.values()]
        while len(chosen) < self.max_examples and any(queues):
            for q in queues:
                if q and len(chosen) < self.max_examples:
                    chosen.append(q.pop(0))
        rest = [s for s in active if s not in chosen]
        return chosen + rest[: self.max_examples - len(chosen)]

    def messages(self, samples: list[Sample]) -> list[dict]:
        active = self.choose(samples)
        body = "\n".join(f"Example {i + 1}: {render_sample(s, threshold_fraction=0.3)}" for i, s in enumerate(active))
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{body}\n\nIn one sentence, what does the feature detect?"}]

    async def explain(self, samples: list[Sample], client) -> Explanation:
        reply = await client.chat(self.messages(samples), max_tokens=self.max_tokens)
        text = parse_explanation(reply.text)
        return Explanation(text or "(unreadable explanation)", ok=bool(text), raw=reply.text)


_PREFIX = re.compile(r"^\s*(?:\**\s*)?(?:explanation|answer|the feature|feature)\s*(?:\**)?\s*[:\-]\s*", re.I)


def parse_explanation(reply: str) -> str:
    """The first non-empty line, without a label, quotes, markdown, the prompt's <<marks>>
    or undecodable bytes; cut at the first sentence end; '' when fewer than three
    letters are left (a weak model sometimes echoes a mark: "<<A")."""
    reply = reply.replace("<<", "").replace(">>", "").replace("\ufffd", "")
    for line in reply.replace("\r", "").split("\n"):
        line = _PREFIX.sub("", line.strip()).strip().strip("*#>`\"' ").strip()
        if not line or line.endswith(":") and len(line) < 40:
            continue
        m = re.match(r"(.+?[.!?])(\s|$)", line)
        text = (m.group(1) if m else line)[:300].strip()
        if len(re.findall(r"[^\W\d_]", text)) >= 3:
            return text
    return ""


EXPLAINERS = {"tokens": TokenExplainer, "llm": LLMExplainer}
