"""What the scorers share: the result type, robust reading of model replies (a reply
that cannot be read is a recorded failure, never an exception), and the one
ask -> parse -> count-failures loop (`Scorer.score`)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..clients.base import ClientError
from ..examples import ExampleSplit


@dataclass
class ScoreResult:
    scorer: str
    score: float | None  # None: nothing could be scored (see details["error"])
    details: dict = field(default_factory=dict)  # per level / counts / failures
    failures: int = 0  # replies that could not be read, or requests that gave up
    n: int = 0  # prompts asked


def parse_rating(reply: str, lo: int = 0, hi: int = 3) -> int | None:
    """The first standalone integer in [lo, hi] ('Rating: 2', '**3**', '2/3'); None if none."""
    for m in re.finditer(r"(?<![\d.])(\d+)(?![\d.]*\d)", reply):
        value = int(m.group(1))
        if lo <= value <= hi:
            return value
    return None


_YES = re.compile(r"\b(yes|true|fires|active|1)\b", re.I)
_NO = re.compile(r"\b(no|false|not|none|inactive|0)\b", re.I)


def parse_yes_no(reply: str) -> bool | None:
    """Yes/no from '1', 'Yes.', 'Answer: 0', 'no, it does not'; the earlier match
    wins; None when neither appears."""
    yes, no = _YES.search(reply), _NO.search(reply)
    if yes and (not no or yes.start() < no.start()):
        return True
    if no:
        return False
    return None


async def ask_all(client, prompts: list[list[dict]], max_tokens: int, choices: list[str] | None = None) -> list[str | None]:
    """Every prompt's reply text, concurrently (the client limits how many at once);
    None for a request that failed (after its retries); a fatal client error stops.
    `choices`: the valid answers, for clients that can constrain to them."""

    async def one(messages):
        try:
            return (await client.chat(messages, max_tokens=max_tokens, choices=choices)).text
        except ClientError as e:
            if e.fatal:
                raise
            return None

    return list(await asyncio.gather(*(one(m) for m in prompts)))


def balanced_accuracy(labels: list[bool], predictions: list[bool]) -> float | None:
    pos = [p for l, p in zip(labels, predictions) if l]
    neg = [not p for l, p in zip(labels, predictions) if not l]
    rates = [sum(x) / len(x) for x in (pos, neg) if x]
    return sum(rates) / len(rates) if rates else None


class Scorer:
    """A scorer asks the client one question per item of the split, parses each reply
    and summarises the answers it could read; replies that failed or could not be
    parsed are counted as failures. Subclasses give the four parts."""

    name: str
    max_tokens: int = 8
    choices: list[str] | None = None     # the valid answers, for clients that can constrain to them
    prompt: Callable[[str, str], list[dict]]   # (explanation, text) -> chat messages (a module-level function)

    def items(self, split: ExampleSplit) -> list[tuple[Any, str]]:
        """(what the answer is compared with, the text shown) for each question."""
        raise NotImplementedError

    def parse(self, reply: str) -> Any | None:
        raise NotImplementedError

    def summarise(self, answered: list[tuple[Any, Any]]) -> tuple[float | None, dict]:
        """(score or None, details; details["error"] says why there is no score)."""
        raise NotImplementedError

    async def score(self, explanation: str, split: ExampleSplit, client) -> ScoreResult:
        items = self.items(split)
        prompt = type(self).prompt
        replies = await ask_all(client, [prompt(explanation, text) for _, text in items], self.max_tokens, self.choices)
        answered, failures = [], 0
        for (item, _), reply in zip(items, replies):
            answer = self.parse(reply) if reply is not None else None
            if answer is None:
                failures += 1
                continue
            answered.append((item, answer))
        score, details = self.summarise(answered)
        return ScoreResult(self.name, score, details, failures, len(items))
