"""The GNU Collaborative International Dictionary of English (Debian dict-gcide),
read from the dictd index (headword, base64 offset, base64 length) and the
dictzip file (plain gzip to Python). 20 entries to a document."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

INDEX = Path("/usr/share/dictd/gcide.index")
DICT = Path("/usr/share/dictd/gcide.dict.dz")
GROUP = 20
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def available() -> bool:
    return INDEX.is_file() and DICT.is_file()


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def read() -> Iterator[tuple[str, str]]:
    entries = []
    with open(INDEX, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and not parts[0].startswith("00-database"):
                entries.append((_b64(parts[1]), _b64(parts[2]), parts[0]))
    entries.sort()
    with gzip.open(DICT, "rb") as f:
        position, group, first = 0, [], None
        for offset, length, word in entries:
            if offset < position:
                continue  # several headwords share one entry
            f.seek(offset)
            group.append(f.read(length).decode("utf-8", errors="replace"))
            first = first or word
            position = offset + length
            if len(group) == GROUP:
                yield f"gcide/{first}", "\n\n".join(group)
                group, first = [], None
        if group:
            yield f"gcide/{first}", "\n\n".join(group)
