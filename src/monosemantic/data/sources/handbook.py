"""The Debian Administrator's Handbook (Debian debian-handbook): the same chapters
in many languages, HTML converted to text. Pages a translation leaves in English
are removed by the corpus-wide duplicate check (en-US is read first)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

from .html_text import html_to_text

_ENGLISH = frozenset("the and of to is in that for are with this be it you by on as or can which".split())


def looks_english(text: str) -> bool:
    """Many translations are partial: their untranslated pages differ from en-US only
    in chapter labels, so the duplicate check misses them. English stopwords make up
    ~25 % of English words and ~0-3 % of the other languages' here."""
    words = text.lower().split()
    return sum(w in _ENGLISH for w in words) > 0.12 * max(len(words), 1)

ROOT = Path("/usr/share/doc/debian-handbook/html")


MIN_TRANSLATED = 0.3  # of a page's characters; below that the page is the English one with new labels


@functools.lru_cache(maxsize=1)
def _english_paragraphs() -> frozenset[str]:
    """Paragraphs of en-US: what a translation shares with it (code, commands,
    untranslated text) is not text in that language."""
    out = set()
    for path in (ROOT / "en-US").glob("*.html"):
        out.update(p.strip() for p in html_to_text(path.read_text(encoding="utf-8")).split("\n\n"))
    return frozenset(out)


def _translated(text: str) -> str:
    english = _english_paragraphs()
    kept = [p for p in text.split("\n\n") if p.strip() not in english and not looks_english(p)]
    translated = "\n\n".join(kept)
    return translated if len(translated) >= MIN_TRANSLATED * len(text) else ""


def languages() -> list[str]:
    if not ROOT.is_dir():
        return []
    langs = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.html")))
    return sorted(langs, key=lambda lang: lang != "en-US")


def available(lang: str) -> bool:
    return any((ROOT / lang).glob("*.html"))


def read(lang: str) -> Iterator[tuple[str, str]]:
    for path in sorted((ROOT / lang).glob("*.html")):
        if path.name == "index.html":
            continue  # the table of contents
        try:
            text = html_to_text(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        if lang != "en-US":
            text = _translated(text)
        yield f"debian-handbook/{lang}/{path.name}", text
