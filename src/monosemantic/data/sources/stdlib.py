"""Python's own standard-library sources: always present wherever this runs."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path
from typing import Iterator

_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}


def _root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def available() -> bool:
    return _root().is_dir()


def read() -> Iterator[tuple[str, str]]:
    root = _root()
    files = sorted(p for p in root.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts[:-1]))
    random.Random(0).shuffle(files)  # the cap then keeps a spread of modules, not a-z
    for path in files:
        try:
            yield str(path.relative_to(root)), path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
