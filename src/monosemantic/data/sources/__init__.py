"""The embedded corpus: one module per source family, each yielding (title, text)
pairs lazily so a source's cap stops reading early. Registry order is build order:
earlier sources win exact-duplicate ties (the English handbook before its
untranslated copies)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from . import fortunes, gcide, handbook, perldoc, pythondoc, stdlib, wordnet

MB = 1_000_000


@dataclass(frozen=True)
class Source:
    name: str
    package: str  # the apt package (or "python3" for the standard library)
    licence: str
    kind: str  # code | prose | multilingual
    language: str
    cap_chars: int  # so that no source dominates the mix
    read: Callable[[], Iterator[tuple[str, str]]]
    available: Callable[[], bool]


def embedded_sources() -> list[Source]:
    sources = [
        Source("python-stdlib", "python3", "PSF-2.0", "code", "python", 6 * MB, stdlib.read, stdlib.available),
        Source("python-docs", "python3.11-doc", "PSF-2.0", "prose", "en", 5 * MB, pythondoc.read, pythondoc.available),
        Source("perl-doc", "perl-doc", "GPL-1+ or Artistic", "prose", "en", 3 * MB, perldoc.read, perldoc.available),
        Source("wordnet", "wordnet-base", "WordNet-3.0", "prose", "en", 2 * MB, wordnet.read, wordnet.available),
        Source("gcide", "dict-gcide", "GPL-2+", "prose", "en", 3 * MB, gcide.read, gcide.available),
    ]
    for lang, package, licence in fortunes.PACKAGES:
        sources.append(Source(
            package, package, licence, "prose" if lang == "en" else "multilingual", lang, 3 * MB,
            (lambda lang=lang: fortunes.read(lang)), (lambda lang=lang: fortunes.available(lang)),
        ))
    for lang in handbook.languages():
        sources.append(Source(
            f"debian-handbook/{lang}", "debian-handbook", "GPL-2+ or CC-BY-SA-3.0", "multilingual", lang, 300_000,
            (lambda lang=lang: handbook.read(lang)), (lambda lang=lang: handbook.available(lang)),
        ))
    if not handbook.languages():
        sources.append(Source("debian-handbook", "debian-handbook", "GPL-2+ or CC-BY-SA-3.0", "multilingual", "*", 0,
                              lambda: iter(()), lambda: False))
    return sources
