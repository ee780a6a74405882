"""Concept sets: the JSON files in steering/concepts/ (or a user's file given by path),
validated on load, with a fixed held-out split.

A file holds
    {"name", "description", "source", "licence", "tokens": [...],
     "positive": [TEXT, ...], "negative": [TEXT, ...]}
where each TEXT is a string or {"text": ..., "kind": "concrete"|"abstract", "split":
"train"|"test"} ("kind" and "split" optional). "kind" marks a concrete instance of the
concept (code with a bug, a lie told in dialogue) or abstract discussion of it (prose
about bugs, about lying); negatives may carry it too, for hard negatives of the same
surface.

The split is fixed so that choosing a feature and scoring it never see the same text:
a text without an explicit "split" goes to "train" if it is the 1st, 3rd, 5th ... text
of its list and kind, else "test" (within a kind, so both halves get both kinds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

KINDS = ("concrete", "abstract")
SPLITS = ("train", "test")
MIN_TEXTS = 40          # per side in every shipped set (tests/steering/test_concept_sets.py)
MAX_CHARS = 2000        # a text is 1-3 sentences or a short snippet, not a document


@dataclass
class Concept:
    name: str
    positive: list[str]
    negative: list[str]
    tokens: list[str] = field(default_factory=list)   # words whose first token stands for the concept
    description: str = ""
    # per text, parallel to positive / negative: "train" | "test", and "concrete" | "abstract" | ""
    positive_split: list[str] = field(default_factory=list)
    negative_split: list[str] = field(default_factory=list)
    positive_kind: list[str] = field(default_factory=list)
    negative_kind: list[str] = field(default_factory=list)
    source: str = ""
    licence: str = ""

    def __post_init__(self):
        # a Concept built in code (two plain lists) gets the default split and no kinds
        if not self.positive_kind:
            self.positive_kind = [""] * len(self.positive)
        if not self.negative_kind:
            self.negative_kind = [""] * len(self.negative)
        if not self.positive_split:
            self.positive_split = default_split(self.positive_kind)
        if not self.negative_split:
            self.negative_split = default_split(self.negative_kind)

    def half(self, split: str) -> "Concept":
        """The texts of one split ("train": choose features; "test": score them)."""
        if split not in SPLITS:
            raise ValueError(split)
        keep_p = [i for i, s in enumerate(self.positive_split) if s == split]
        keep_n = [i for i, s in enumerate(self.negative_split) if s == split]
        return replace(self, positive=[self.positive[i] for i in keep_p], negative=[self.negative[i] for i in keep_n],
                       positive_split=[split] * len(keep_p), negative_split=[split] * len(keep_n),
                       positive_kind=[self.positive_kind[i] for i in keep_p],
                       negative_kind=[self.negative_kind[i] for i in keep_n])

    def halves(self) -> tuple["Concept", "Concept"]:
        """(train, test)."""
        return self.half("train"), self.half("test")

    def has_kinds(self) -> bool:
        return all(k in KINDS for k in self.positive_kind) and set(self.positive_kind) == set(KINDS)


def default_split(kinds: list[str]) -> list[str]:
    """Alternate train/test within each kind, in file order."""
    seen: dict[str, int] = {}
    out = []
    for k in kinds:
        out.append(SPLITS[seen.get(k, 0) % 2])
        seen[k] = seen.get(k, 0) + 1
    return out


def concept_names() -> list[str]:
    root = resources.files(__package__) / "concepts"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def load_concept(name_or_path: str | Path) -> Concept:
    """A shipped set by name, or a user's .json file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise ConfigError(f"concept file {path} does not exist")
        where, text = str(path), _read(path)
    else:
        entry = resources.files(__package__) / "concepts" / f"{name_or_path}.json"
        if not entry.is_file():
            raise ConfigError(f"unknown concept {name_or_path!r}: choose one of {', '.join(concept_names())} or give a .json file")
        where, text = f"concept {name_or_path}", entry.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where} is not valid JSON (line {e.lineno}: {e.msg})") from None
    return parse_concept(raw, where, default_name=path.stem)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None


def parse_concept(raw, where: str, default_name: str = "concept") -> Concept:
    """Validate a decoded concept file; every problem is one ConfigError line naming the text."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object with \"positive\" and \"negative\" lists")
    unknown = set(raw) - {"name", "description", "source", "licence", "license", "tokens", "positive", "negative"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("name", "description", "source", "licence", "license"):
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"{where}: \"{key}\" must be a string")
    tokens = raw.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
        raise ConfigError(f"{where}: \"tokens\" must be a list of non-empty strings")
    sides = {}
    for side in ("positive", "negative"):
        items = raw.get(side)
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}: \"{side}\" must be a non-empty list of texts")
        sides[side] = _parse_texts(items, f"{where}: {side}[{{}}]")
    (pos, pos_kind, pos_split), (neg, neg_kind, neg_split) = sides["positive"], sides["negative"]
    dup = set(pos) & set(neg)
    if dup:
        raise ConfigError(f"{where}: a text is both positive and negative: {next(iter(dup))[:60]!r}")
    concept = Concept(raw.get("name", default_name), pos, neg, list(tokens), raw.get("description", ""),
                      pos_split, neg_split, pos_kind, neg_kind, raw.get("source", ""),
                      raw.get("licence", raw.get("license", "")))
    for side in ("positive", "negative"):
        for split in SPLITS:
            if split not in getattr(concept, f"{side}_split"):
                raise ConfigError(f"{where}: no {side} text in the {split!r} half: give at least two texts per side")
    return concept


def _parse_texts(items: list, where: str) -> tuple[list[str], list[str], list[str | None]]:
    texts, kinds, splits = [], [], []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{where.format(i)}: expected a string or {{\"text\": ...}}")
        extra = set(item) - {"text", "kind", "split"}
        if extra:
            raise ConfigError(f"{where.format(i)}: unknown key(s) {', '.join(sorted(extra))} (allowed: text, kind, split)")
        text, kind, split = item.get("text"), item.get("kind", ""), item.get("split")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where.format(i)}: \"text\" must be a non-empty string")
        if len(text) > MAX_CHARS:
            raise ConfigError(f"{where.format(i)}: {len(text)} characters; a concept text is at most {MAX_CHARS}")
        if kind not in ("",) + KINDS:
            raise ConfigError(f"{where.format(i)}: kind {kind!r} must be one of {', '.join(KINDS)}")
        if split is not None and split not in SPLITS:
            raise ConfigError(f"{where.format(i)}: split {split!r} must be one of {', '.join(SPLITS)}")
        if text in texts:
            raise ConfigError(f"{where.format(i)}: duplicate text {text[:60]!r}")
        texts.append(text)
        kinds.append(kind)
        splits.append(split)
    default = default_split(kinds)
    return texts, kinds, [s if s is not None else d for s, d in zip(splits, default)]
