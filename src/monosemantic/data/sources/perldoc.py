"""Perl's manual pages in POD (Debian perl-doc), markup reduced to text."""

from __future__ import annotations

import glob
import random
import re
from pathlib import Path
from typing import Iterator

_FORMAT = re.compile(r"[IBCFSLEXZ]<+\s*(.*?)\s*>+", re.S)
_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}


def _files() -> list[Path]:
    return sorted(Path(p) for p in glob.glob("/usr/share/perl/*/pod/*.pod"))


def available() -> bool:
    return bool(_files())


def pod_to_text(pod: str) -> str:
    out, in_pod = [], True
    for block in pod.split("\n\n"):
        if block.startswith("=cut"):
            in_pod = False
            continue
        if block.startswith("=pod") or block.startswith("=head") or block.startswith("=item"):
            in_pod = True
        if not in_pod or block.startswith(("=over", "=back", "=begin", "=end", "=for", "=encoding", "=pod")):
            continue
        block = re.sub(r"^=(head\d|item)\s*", "", block)
        if not block.startswith((" ", "\t")):  # verbatim (code) paragraphs are kept as they are
            block = _FORMAT.sub(lambda m: m.group(1), block)
            block = re.sub(r"E<(\w+)>", lambda m: _ESCAPES.get(m.group(1), ""), block)
        out.append(block)
    return "\n\n".join(out)


def read() -> Iterator[tuple[str, str]]:
    files = _files()
    random.Random(0).shuffle(files)
    for path in files:
        try:
            yield f"perl/{path.name}", pod_to_text(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
