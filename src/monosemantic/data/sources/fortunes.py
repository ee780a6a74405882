"""Fortune cookies (Debian fortunes, fortunes-de/-es/-it/-ru): one document per
fortune, '%'-separated. Offensive (off/) and ASCII-art files are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

ROOT = Path("/usr/share/games/fortunes")
PACKAGES = [  # (language, apt package, licence per /usr/share/doc/<package>/copyright)
    ("en", "fortunes", "BSD (fortune-mod); quotations of various origin"),
    ("de", "fortunes-de", "GPL-2+"),
    ("es", "fortunes-es", "GPL-2+"),
    ("it", "fortunes-it", "public domain (freeware)"),
    ("ru", "fortunes-ru", "GPL-2+"),
]
_ART = ("art", "ascii-art", "asciiart", "banner")


def _dir(lang: str) -> Path:
    return ROOT if lang == "en" else ROOT / lang


def _files(lang: str) -> list[Path]:
    d = _dir(lang)
    if not d.is_dir():
        return []
    files = []
    for p in sorted(d.iterdir()):
        if not p.is_file() or p.suffix in (".dat", ".u8") or p.name.startswith(_ART):
            continue
        files.append(p)
    return files


def available(lang: str) -> bool:
    return bool(_files(lang))


def read(lang: str) -> Iterator[tuple[str, str]]:
    for path in _files(lang):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            u8 = path.with_name(path.name + ".u8")  # some packages ship a UTF-8 copy beside a legacy file
            if not u8.is_file():
                continue
            text = u8.read_text(encoding="utf-8", errors="strict")
        for i, cookie in enumerate(text.split("\n%\n")):
            yield f"fortunes/{lang}/{path.name}#{i}", cookie.strip("%\n")
