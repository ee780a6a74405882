"""HTML to plain text with the standard library's parser: block elements become
line breaks, scripts, styles and navigation are dropped; inside a page's main
container (Sphinx role="main") only that container is kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "ul", "ol", "pre", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
          "dt", "dd", "dl", "section", "blockquote", "hr", "title", "td", "th"}
_SKIP = {"script", "style", "nav", "head"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.main: list[str] | None = None
        self.skip = 0
        self.pre = 0
        self.main_depth = 0  # div depth inside the main container, 0 = outside

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        if tag == "pre":
            self.pre += 1
        a = dict(attrs)
        if tag == "div":
            if self.main_depth:
                self.main_depth += 1
            elif a.get("role") == "main" and self.main is None:
                self.main, self.main_depth = [], 1
        if tag in _BLOCK:
            self._emit("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP and self.skip:
            self.skip -= 1
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _BLOCK:
            self._emit("\n")
        if tag == "div" and self.main_depth:
            self.main_depth -= 1

    def handle_data(self, data):
        if self.skip:
            return
        self._emit(data if self.pre else re.sub(r"\s+", " ", data))

    def _emit(self, s: str) -> None:
        self.parts.append(s)
        if self.main_depth:
            self.main.append(s)


def html_to_text(html: str) -> str:
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.main if parser.main else parser.parts)
    lines = [line.strip() if not line.startswith("    ") else line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
