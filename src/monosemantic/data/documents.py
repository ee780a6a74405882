"""Documents and the cleaning every source goes through: whitespace normalised,
binary-looking or too-short text dropped, long texts split at paragraph
boundaries, exact and near-trivial duplicates removed."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Iterator

MIN_CHARS = 20  # shorter than a one-line fortune: noise (a title, a stray heading)
MAX_CHARS = 8_000  # ~2k tokens: one long page must not fill a whole run's contexts
MAX_CONTROL_RATIO = 0.01  # text files have none; binaries have many

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t\f\v\u00a0]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True)
class Document:
    id: int  # index in the corpus, stable for a given corpus directory
    source: str  # key in the manifest's "sources"
    title: str  # file name, headword, page: where the text came from
    text: str


def looks_binary(data: bytes | str) -> bool:
    """NUL anywhere, or more than 1 % control characters other than \\t \\n \\r \\f."""
    sample = data[:65536]
    if isinstance(sample, bytes):
        if b"\x00" in sample:
            return True
        sample = sample.decode("latin-1")
    if "\x00" in sample:
        return True
    return len(_CONTROL.findall(sample)) > MAX_CONTROL_RATIO * max(len(sample), 1)


def normalise(text: str) -> str:
    """NFC, Unix newlines, no trailing spaces, at most one blank line in a row.
    Indentation is kept: code depends on it."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_LINES.sub("\n\n", text).strip("\n").rstrip()


def split_long(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Split at blank lines (else newlines, else anywhere) into parts of at most
    max_chars, so documents shuffle at a finer grain than whole manuals."""
    if len(text) <= max_chars:
        return [text]
    parts, current = [], ""
    for para in text.split("\n\n"):
        while len(para) > max_chars:
            cut = para.rfind("\n", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            head, para = para[:cut], para[cut:].lstrip("\n")
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if current and len(current) + 2 + len(para) > max_chars:
            parts.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()]


def dedupe_key(text: str) -> str:
    """Case, whitespace and punctuation ignored: the same fortune in two packages,
    re-wrapped or re-punctuated, is one document."""
    return hashlib.sha1(_NON_WORD.sub("", text.lower()).encode()).hexdigest()


class Cleaner:
    """Stateful across sources so a text seen in one source is dropped in the next."""

    def __init__(self, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS):
        self.min_chars, self.max_chars = min_chars, max_chars
        self.seen: set[str] = set()
        self.dropped = {"short": 0, "binary": 0, "duplicate": 0}

    def clean(self, title: str, text: str) -> Iterator[tuple[str, str]]:
        """(title, text) pairs ready to store: zero if the text is unusable."""
        if looks_binary(text):
            self.dropped["binary"] += 1
            return
        text = normalise(text)
        parts = split_long(text, self.max_chars)
        for i, part in enumerate(parts):
            if len(part) < self.min_chars:
                self.dropped["short"] += 1
                continue
            key = dedupe_key(part)
            if key in self.seen:
                self.dropped["duplicate"] += 1
                continue
            self.seen.add(key)
            yield (f"{title} (part {i + 1})" if len(parts) > 1 else title), part

    def clean_all(self, items: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        for title, text in items:
            yield from self.clean(title, text)
