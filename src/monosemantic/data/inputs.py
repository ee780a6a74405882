"""User-supplied corpus inputs: text files, JSONL, directories, hf:NAME[:split].
Each input becomes one source; unusable files inside a directory are skipped with
a warning, an input that yields nothing is an error."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import CorpusError
from .documents import looks_binary

log = logging.getLogger(__name__)

CODE_SUFFIXES = {".py", ".c", ".h", ".cc", ".cpp", ".hpp", ".rs", ".go", ".java", ".js", ".ts", ".rb", ".pl", ".pm",
                 ".sh", ".lua", ".hs", ".ml", ".scala", ".kt", ".swift", ".cs", ".php", ".r", ".jl", ".sql"}
HF_MAX_DOCUMENTS = 100_000


@dataclass
class InputSource:
    name: str
    kind: str  # code | prose
    items: list[tuple[str, str]]  # (title, text)


class _Unusable(Exception):
    """A file that cannot be read as text; the message names it and says why."""


class UnusableInput(CorpusError):
    """An input file that is binary or not UTF-8: skipped if other inputs remain."""


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if looks_binary(data):
        raise _Unusable(f"{path} looks binary (NUL or control bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Unusable(f"{path} is not valid UTF-8 (byte offset {e.start}): convert it, e.g. `iconv -t UTF-8`") from None


def _read_jsonl(path: Path, text_field: str) -> Iterator[tuple[str, str]]:
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path} line {n} is not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or text_field not in record:
            raise CorpusError(f'{path} line {n} has no "{text_field}" field: name the text field with --text-field')
        text = record[text_field]
        if not isinstance(text, str):
            raise CorpusError(f'{path} line {n}: "{text_field}" is {type(text).__name__}, not a string')
        yield f"{path.name}:{n}", text


def _read_file(path: Path, text_field: str) -> list[tuple[str, str]]:
    if path.suffix == ".jsonl":
        return list(_read_jsonl(path, text_field))
    return [(path.name, _read_text(path))]


def _read_hf(spec: str, text_field: str) -> InputSource:
    _, name, *rest = spec.split(":")
    split = rest[0] if rest else "train"
    try:
        import datasets
    except ImportError:
        raise CorpusError(f"{spec}: Hugging Face datasets need the `datasets` package (pip install datasets) and network access") from None
    try:
        stream = datasets.load_dataset(name, split=split, streaming=True)
        items = []
        for i, record in enumerate(stream):
            if i >= HF_MAX_DOCUMENTS:
                break
            if text_field not in record:
                raise CorpusError(f'{spec} has no "{text_field}" field (fields: {", ".join(record)}): use --text-field')
            items.append((f"{name}:{split}:{i}", str(record[text_field])))
    except CorpusError:
        raise
    except Exception as e:  # datasets raises many types when offline or for unknown names
        raise CorpusError(f"{spec}: cannot load the Hugging Face dataset ({type(e).__name__}: {e}); it needs network access or a local cache") from None
    return InputSource(spec, "prose", items)


def read_input(spec: str, text_field: str = "text") -> InputSource:
    """Read one input; raises CorpusError if it holds no readable text."""
    if spec.startswith("hf:"):
        return _read_hf(spec, text_field)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CorpusError(f"input {spec} does not exist")
    if path.is_file():
        try:
            items = _read_file(path, text_field)
        except _Unusable as e:
            raise UnusableInput(str(e)) from None
        kind = "code" if path.suffix.lower() in CODE_SUFFIXES else "prose"
        if not any(text.strip() for _, text in items):
            raise CorpusError(f"input {spec} is empty: no usable text")
        return InputSource(spec, kind, items)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    items, n_code = [], 0
    for file in files:
        try:
            found = _read_file(file, text_field)
        except _Unusable as e:
            log.warning("skipping %s", e)
            continue
        items.extend((f"{file.relative_to(path)}{title[len(file.name):]}", text) for title, text in found)
        n_code += file.suffix.lower() in CODE_SUFFIXES
    if not any(text.strip() for _, text in items):
        raise CorpusError(f"input directory {spec} holds no usable text files")
    return InputSource(spec, "code" if n_code > len(files) / 2 else "prose", items)


def fingerprint(inputs: list[str]) -> list:
    """Size and mtime of every input file, to reuse a corpus built from unchanged inputs."""
    out = []
    for spec in inputs:
        path = Path(spec).expanduser()
        if spec.startswith("hf:") or not path.exists():
            out.append(spec)
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        out.append([spec, [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]])
    return out
