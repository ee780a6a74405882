"""The completeness catalogue: concepts whose mentions a rule finds in the token stream.

A concept is a set of surface forms (exact, case-sensitive strings; the catalogue lists
the capitalisations it accepts) and the corpus sources it counts in. Python keywords
count in Python source only and standard-library module names in Python source and
docs, because "in", "if", "time" or "random" in prose are English words, not Python.

Mentions (`find_mentions`) are located on the bytes of each packed context: a form
matches where neither side touches a letter, digit or underscore (any non-ASCII byte
counts as a letter, so "Russia" inside "Russian" or a Cyrillic word does not match),
and a match covers every token its bytes overlap, so multi-token names ("New
Zealand", " molybdenum" = several BPE pieces) are one mention over several tokens."""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from . import concept_lists as L

PYTHON_CODE = ("python-stdlib",)
PYTHON_ANY = ("python-stdlib", "python-docs")


@dataclass(frozen=True)
class Concept:
    category: str                       # python-module, python-keyword, language, element, country, number, ...
    name: str
    forms: tuple[str, ...]              # exact strings that mention it
    sources: tuple[str, ...] | None     # corpus sources where a match counts (None: all)

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"


def _cased(word: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((word, word.capitalize())))


def catalogue() -> list[Concept]:
    """Every concept of the catalogue, in a fixed order."""
    out = [Concept("python-module", m, (m,), PYTHON_ANY)
           for m in sorted(sys.stdlib_module_names) if not m.startswith("_") and m != "this"]
    out += [Concept("python-keyword", k, (k,), PYTHON_CODE) for k in keyword.kwlist]
    out += [Concept("language", name, forms, None) for name, forms in L.LANGUAGES.items()]
    elements: dict[str, list[str]] = {}
    for word in L.ELEMENTS:
        elements.setdefault(L.ELEMENT_VARIANTS.get(word, word), []).extend(_cased(word))
    out += [Concept("element", name, tuple(forms), None) for name, forms in elements.items()]
    out += [Concept("country", c, (c,), None) for c in L.COUNTRIES]
    out += [Concept("number", n, _cased(n), None) for n in L.NUMBERS]
    out += [Concept("month", m, (m,), None) for m in L.MONTHS]
    out += [Concept("weekday", d, (d,), None) for d in L.WEEKDAYS]
    colours: dict[str, list[str]] = {}
    for word in L.COLOURS:
        colours.setdefault(L.COLOUR_VARIANTS.get(word, word), []).extend(_cased(word))
    out += [Concept("colour", name, tuple(forms), None) for name, forms in colours.items()]
    out += [Concept("planet", p, (p,), None) for p in L.PLANETS]
    return out


class Mentions(NamedTuple):
    concept: np.ndarray   # [M] int64 index into the catalogue
    context: np.ndarray   # [M] int64 packed context
    start: np.ndarray     # [M] int64 first token position
    stop: np.ndarray      # [M] int64 one past the last token position


_EDGE = rb"A-Za-z0-9_\x80-\xff"


def _pattern(forms: Sequence[bytes]) -> re.Pattern:
    alternatives = b"|".join(re.escape(f) for f in sorted(set(forms), key=len, reverse=True))
    return re.compile(rb"(?<![" + _EDGE + rb"])(?:" + alternatives + rb")(?![" + _EDGE + rb"])")


def find_mentions(concepts: Sequence[Concept], contexts: np.ndarray, token_bytes: Sequence[bytes],
                  doc_ids: np.ndarray | None = None, sources: dict[int, str] | None = None) -> Mentions:
    """Every mention of every concept in the packed contexts [C, T] (token ids);
    token_bytes[id] is a token's raw bytes; doc_ids [C, T] and sources (doc id ->
    corpus source) restrict concepts with `sources` to their sources (without them,
    such concepts find nothing)."""
    by_form: dict[bytes, list[int]] = {}
    for i, c in enumerate(concepts):
        for form in c.forms:
            by_form.setdefault(form.encode("utf-8"), []).append(i)
    pattern = _pattern(list(by_form))
    allowed = [None if c.sources is None else set(c.sources) for c in concepts]
    out: list[tuple[int, int, int, int]] = []
    for ctx, row in enumerate(np.asarray(contexts)):
        pieces = [token_bytes[int(t)] for t in row]
        ends = np.cumsum([len(p) for p in pieces])            # [T] byte offset one past each token
        starts = ends - np.array([len(p) for p in pieces])
        for m in pattern.finditer(b"".join(pieces)):
            first = int(np.searchsorted(ends, m.start(), side="right"))
            last = int(np.searchsorted(starts, m.end(), side="left"))   # one past the last overlapping token
            source = None
            if doc_ids is not None and sources is not None:
                source = sources.get(int(doc_ids[ctx, first]))
            for i in by_form[m.group()]:
                if allowed[i] is None or source in allowed[i]:
                    out.append((i, ctx, first, last))
    arr = np.array(out, dtype=np.int64).reshape(-1, 4)
    return Mentions(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def rows_of_positions(store_rows: np.ndarray, ctx_len: int, context: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Store row index of each (context, position), -1 where the store has no row
    there (positions 0-1, separators, outliers: activations/valid.py).
    store_rows: [N, 2+] int (context id, position, ...) of every row, in row order."""
    keys = store_rows[:, 0].astype(np.int64) * ctx_len + store_rows[:, 1]
    order = np.argsort(keys, kind="stable")
    wanted = np.asarray(context, dtype=np.int64) * ctx_len + np.asarray(position, dtype=np.int64)
    at = np.searchsorted(keys[order], wanted).clip(0, len(keys) - 1)
    hit = keys[order][at] == wanted
    return np.where(hit, order[at], -1)
