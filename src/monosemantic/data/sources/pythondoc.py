"""Python 3.11 documentation (Debian python3.11-doc), HTML converted to text."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

from .html_text import html_to_text

ROOT = Path("/usr/share/doc/python3.11/html")
_SKIP = {"_static", "_sources", "_images", "_downloads", "genindex", "search.html", "py-modindex.html"}


def available() -> bool:
    return (ROOT / "library").is_dir()


def read() -> Iterator[tuple[str, str]]:
    files = sorted(p for p in ROOT.rglob("*.html") if not _SKIP & set(p.relative_to(ROOT).parts) and not p.name.startswith("genindex"))
    random.Random(0).shuffle(files)
    for path in files:
        try:
            yield f"python-docs/{path.relative_to(ROOT)}", html_to_text(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
