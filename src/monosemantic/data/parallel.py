"""Parallel text: the same passage in several languages, aligned by document structure.

The Debian Administrator's Handbook is one DocBook source rendered per language
(publican), so every translation has the same page files, the same named anchors
(`<a id="sect.apt-get">`, `<a id="sidebar.apt-pdiff">`) and the same paragraphs
(`<div class="para">`) in the same order; only the words differ. A passage's key is
(page file, the last named anchor before it, its index since that anchor). Generated
ids (`id-1.9.17.2`, index terms) are skipped as anchors: they are positional too, but
are scattered inside sections and add nothing the index does not already say.

A translation's section is aligned only when it has exactly as many paragraphs as
en-US's (otherwise a merged or split paragraph would shift every later index); a
passage is kept in a language only when it is translated (not en-US's text, not
mostly English stopwords: handbook.looks_english), and a page only when most of its
text is (handbook.MIN_TRANSLATED, the corpus's check for pages left in English).

Written into a corpus directory as `parallel.jsonl` (one passage per line: source,
page, section, index, languages, texts) and recorded in its `manifest.json` under
"parallel" (file, digest, key, reference language, passages per language)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

from .. import atomic
from ..errors import CorpusError
from .sources import handbook

FILE = "parallel.jsonl"
FORMAT = "monosemantic-parallel/1"
SOURCE = "debian-handbook"
REFERENCE = "en-US"
MIN_CHARS = 80          # of the en-US passage: shorter ones are labels, commands, "Example 6.1"
_GENERATED = re.compile(r"^id-[0-9.]+$")


@dataclass
class Passage:
    source: str
    page: str
    section: str
    index: int                                   # paragraph index since the section's anchor
    texts: dict[str, str] = field(default_factory=dict)   # language -> text, the reference first

    @property
    def languages(self) -> list[str]:
        return list(self.texts)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.page}#{self.section}/{self.index}"


class _Paragraphs(HTMLParser):
    """(section anchor, index, text) of every top-level `div.para` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[tuple[str, int, str]] = []
        self.section, self.index = "", 0
        self.div_depth = 0        # div nesting inside the current paragraph, 0 = outside one
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("id") and not _GENERATED.match(a["id"]) and "indexterm" not in (a.get("class") or ""):
            if not self.div_depth:
                self.section, self.index = a["id"], 0
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "div":
            if self.div_depth:
                self.div_depth += 1
            elif "para" in (a.get("class") or "").split():
                self.div_depth, self.parts = 1, []

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag == "div" and self.div_depth:
            self.div_depth -= 1
            if not self.div_depth:
                self.out.append((self.section, self.index, re.sub(r"\s+", " ", "".join(self.parts)).strip()))
                self.index += 1

    def handle_data(self, data):
        if self.div_depth and not self.skip:
            self.parts.append(data)


def page_paragraphs(html: str) -> list[tuple[str, int, str]]:
    parser = _Paragraphs()
    parser.feed(html)
    parser.close()
    return parser.out


def _by_section(paragraphs: list[tuple[str, int, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for section, _, text in paragraphs:
        out.setdefault(section, []).append(text)
    return out


def _translated(text: str, english: str) -> bool:
    return text != english and not handbook.looks_english(text)


def align_page(page: str, pages: dict[str, str], reference: str = REFERENCE, source: str = SOURCE) -> list[Passage]:
    """pages: language -> that language's HTML of `page` (the reference included).
    The passages of the page with every language in which they are aligned and translated."""
    ref = _by_section(page_paragraphs(pages[reference]))
    passages = {(s, i): Passage(source, page, s, i, {reference: t}) for s, texts in ref.items() for i, t in enumerate(texts)
                if s and len(t) >= MIN_CHARS}
    alignable = sum(len(p.texts[reference]) for p in passages.values())   # en-US characters that could align
    for lang, html in pages.items():
        if lang == reference:
            continue
        sections = _by_section(page_paragraphs(html))
        kept = {}
        for s, texts in sections.items():
            if len(texts) != len(ref.get(s, ())):
                continue      # merged or split paragraphs: the indices no longer match
            for i, t in enumerate(texts):
                if (s, i) in passages and _translated(t, ref[s][i]):
                    kept[(s, i)] = t
        if sum(len(ref[s][i]) for s, i in kept) < handbook.MIN_TRANSLATED * alignable:
            continue          # a page the translation left (mostly) in English
        for k, t in kept.items():
            passages[k].texts[lang] = t
    return [p for p in passages.values() if len(p.texts) > 1]


def align_directory(root: Path, reference: str = REFERENCE, languages: Iterable[str] | None = None,
                    source: str = SOURCE) -> list[Passage]:
    """Every page of `root/<reference>/*.html` aligned with the same file in the other
    language folders of `root` (the handbook's html/ layout)."""
    root = Path(root)
    if not (root / reference).is_dir():
        raise CorpusError(f"{root / reference} does not exist: install the Debian package debian-handbook (apt-get install debian-handbook)")
    langs = sorted(languages) if languages is not None else sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.html")))
    out = []
    for path in sorted((root / reference).glob("*.html")):
        if path.name == "index.html":
            continue      # the table of contents
        pages = {}
        for lang in [reference] + [lang for lang in langs if lang != reference]:
            try:
                pages[lang] = (root / lang / path.name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        out += align_page(path.name, pages, reference, source)
    return out


# --- the corpus directory -----------------------------------------------------------
def summary(passages: list[Passage], reference: str = REFERENCE) -> dict:
    per_language: dict[str, int] = {}
    for p in passages:
        for lang in p.texts:
            per_language[lang] = per_language.get(lang, 0) + 1
    return {"passages": len(passages), "pages": len({p.page for p in passages}), "reference": reference,
            "languages": dict(sorted(per_language.items(), key=lambda kv: (-kv[1], kv[0])))}


def write_parallel(corpus_dir: Path, passages: list[Passage], root: Path | None = None) -> dict:
    """parallel.jsonl into `corpus_dir` and its entry into manifest.json, both atomically
    (the other keys of the manifest are kept as they are)."""
    corpus_dir = Path(corpus_dir)
    lines = "".join(json.dumps({**asdict(p), "languages": p.languages}, ensure_ascii=False) + "\n" for p in passages)
    data = lines.encode("utf-8")
    atomic.write_bytes(corpus_dir / FILE, data)
    entry = {"file": FILE, "format": FORMAT, "digest": hashlib.sha1(data).hexdigest()[:16],
             "key": "source, page, section (named anchor), index (paragraph since the anchor)",
             "sources": {SOURCE: {**summary(passages), "licence": "GPL-2+ or CC-BY-SA-3.0", "package": "debian-handbook",
                                  "aligned_by": "same page file, same named anchor, same paragraph index; "
                                                "sections whose paragraph count differs from en-US are left out"}}}
    manifest_path = corpus_dir / "manifest.json"
    manifest = atomic.read_json(manifest_path) if manifest_path.is_file() else {}
    manifest["parallel"] = entry
    atomic.write_json(manifest_path, manifest)
    return entry


def read_parallel(corpus_dir: Path) -> list[Passage]:
    path = Path(corpus_dir) / FILE
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append(Passage(d["source"], d["page"], d["section"], int(d["index"]), dict(d["texts"])))
    return out


def ensure_parallel(corpus_dir: Path, root: Path = handbook.ROOT) -> list[Passage]:
    """The corpus's aligned passages, aligning them first when its manifest has none
    (a corpus built before parallel text existed)."""
    corpus_dir = Path(corpus_dir)
    manifest_path = corpus_dir / "manifest.json"
    manifest = atomic.read_json(manifest_path) if manifest_path.is_file() else {}
    if (manifest.get("parallel") or {}).get("file") == FILE and (corpus_dir / FILE).is_file():
        return read_parallel(corpus_dir)
    passages = align_directory(root)
    if not passages:
        raise CorpusError(f"no aligned passages under {root}: install the Debian package debian-handbook")
    write_parallel(corpus_dir, passages)
    return passages
