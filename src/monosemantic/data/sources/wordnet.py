"""WordNet 3.0 glosses (Debian wordnet-base): one line per synset,
"word, synonym (noun): gloss; "example"", grouped 100 synsets to a document so a
document is not a 40-character fragment."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

ROOT = Path("/usr/share/wordnet")
_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
GROUP = 100


def available() -> bool:
    return (ROOT / "data.noun").is_file()


def _entries(path: Path, pos: str) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  ") or "|" not in line:
                continue  # licence header
            head, gloss = line.split("|", 1)
            fields = head.split()
            n_words = int(fields[3], 16)
            words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            yield f"{', '.join(words)} ({pos}): {gloss.strip()}"


def read() -> Iterator[tuple[str, str]]:
    for suffix, pos in _POS.items():
        path = ROOT / f"data.{suffix}"
        if not path.is_file():
            continue
        group: list[str] = []
        for entry in _entries(path, pos):
            group.append(entry)
            if len(group) == GROUP:
                yield f"wordnet/{pos}", "\n".join(group)
                group = []
        if group:
            yield f"wordnet/{pos}", "\n".join(group)
