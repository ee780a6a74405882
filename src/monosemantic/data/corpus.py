"""A corpus directory: `docs-00000.jsonl` shards ({"id", "source", "title", "text"}
per line, in id order) and `manifest.json` (sources with counts and licences).
Written to a temporary directory and renamed, so a killed build leaves nothing
that later looks complete."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

from .. import atomic
from ..errors import CorpusError
from .documents import Cleaner, Document
from .inputs import UnusableInput, fingerprint, read_input
from .sources import embedded_sources, handbook

log = logging.getLogger(__name__)

VERSION = "v1"
FORMAT = "monosemantic-corpus/1"
MANIFEST = "manifest.json"
SHARD_CHARS = 4_000_000


def cache_dir() -> Path:
    root = Path(os.environ.get("MONOSEMANTIC_CACHE", Path.home() / ".cache" / "monosemantic"))
    return root / "corpus" / VERSION


class Corpus:
    """Iterating yields Documents in id order, the same every time."""

    def __init__(self, directory: Path, manifest: dict):
        self.directory, self.manifest = directory, manifest

    def __len__(self) -> int:
        return int(self.manifest["total_documents"])

    def __iter__(self) -> Iterator[Document]:
        for shard in self.manifest["shards"]:
            with open(self.directory / shard, encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    yield Document(d["id"], d["source"], d["title"], d["text"])

    @property
    def digest(self) -> str:
        return self.manifest["digest"]


class _Writer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.shards: list[str] = []
        self.file = None
        self.chars_in_shard = 0
        self.n = 0
        self.hash = __import__("hashlib").sha1()

    def add(self, source: str, title: str, text: str) -> None:
        if self.file is None or self.chars_in_shard >= SHARD_CHARS:
            if self.file:
                self.file.close()
            name = f"docs-{len(self.shards):05d}.jsonl"
            self.shards.append(name)
            self.file = open(self.directory / name, "w", encoding="utf-8")
            self.chars_in_shard = 0
        line = json.dumps({"id": self.n, "source": source, "title": title, "text": text}, ensure_ascii=False)
        self.file.write(line + "\n")
        self.hash.update(line.encode())
        self.chars_in_shard += len(text)
        self.n += 1

    def close(self) -> None:
        if self.file:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


def _commit(tmp: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    try:
        tmp.rename(out)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)


def _write(out: Path, streams, manifest_extra: dict, progress: bool) -> Path:
    """streams: (source meta dict, iterator of (title, text)) pairs, in build order."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    try:
        writer, cleaner, sources = _Writer(tmp), Cleaner(), {}
        for meta, items in streams:
            name, cap = meta.pop("name"), meta.pop("cap_chars", None)
            docs = chars = 0
            for title, text in cleaner.clean_all(items):
                writer.add(name, title, text)
                docs, chars = docs + 1, chars + len(text)
                if cap is not None and chars >= cap:
                    break
            if docs == 0:
                log.info("source %s gave no usable documents after cleaning", name)
                continue
            sources[name] = {"documents": docs, "characters": chars, **meta}
            if progress:
                print(f"corpus: {name}: {docs:,} documents, {chars:,} characters", file=sys.stderr)
        writer.close()
        if writer.n == 0:
            raise CorpusError("no usable text: every document was empty, too short, binary or a duplicate")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "sources": sources,
            "total_documents": writer.n,
            "total_characters": sum(s["characters"] for s in sources.values()),
            "dropped": cleaner.dropped,
            "shards": writer.shards,
            "digest": writer.hash.hexdigest()[:16],
            "build_seconds": round(time.perf_counter() - start, 2),
            **manifest_extra,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        _commit(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_embedded(out: Path, progress: bool = True, cap_scale: float = 1.0) -> Path:
    """The embedded corpus from this machine's Debian packages and Python sources.
    cap_scale < 1 builds a smaller one (tests)."""
    streams, skipped = [], {}
    for s in embedded_sources():
        if not s.available():
            if s.package not in skipped.values():
                log.warning("corpus source %s skipped: install the Debian package `%s` (apt-get install %s)", s.name, s.package, s.package)
            skipped[s.name] = s.package
            continue
        meta = {"name": s.name, "cap_chars": max(1, int(s.cap_chars * cap_scale)), "licence": s.licence,
                "package": s.package, "kind": s.kind, "language": s.language}
        streams.append((meta, s.read()))
    extra = {"seed": 0, "embedded": True, "skipped": skipped, "cap_scale": cap_scale}
    if all(meta["kind"] == "code" for meta, _ in streams):
        extra["note"] = "only Python standard-library code: install the Debian packages in `skipped` for prose and multilingual text"
    out = _write(out, streams, extra, progress)
    if handbook.languages() and cap_scale >= 1:   # the handbook aligned across languages (data/parallel.py); not in small test builds
        from .parallel import align_directory, write_parallel

        write_parallel(out, align_directory(handbook.ROOT))
    return out


def build_corpus(inputs: list[str] | None, out: Path | None, seed: int = 0, progress: bool = True, text_field: str = "text") -> Path:
    """inputs None: the embedded corpus, built once into the cache and reused.
    Otherwise files, JSONL, directories or hf:NAME[:split] written to `out`."""
    if inputs is None:
        target = Path(out) if out is not None else cache_dir()
        if (target / MANIFEST).is_file():
            manifest = atomic.read_json(target / MANIFEST)
            if handbook.languages() and "parallel" not in manifest and manifest.get("cap_scale", 1) >= 1:
                from .parallel import ensure_parallel   # a corpus built before the alignment existed

                ensure_parallel(target)
            return target
        if progress:
            print(f"corpus: building the embedded corpus into {target} (once, under a minute)", file=sys.stderr)
        return build_embedded(target, progress)
    if not inputs:
        raise CorpusError("no inputs given")
    if out is None:
        raise CorpusError("an output directory is needed for a corpus built from inputs (--out)")
    out = Path(out)
    settings = {"inputs": list(inputs), "text_field": text_field, "seed": seed, "fingerprint": fingerprint(inputs)}
    if (out / MANIFEST).is_file():
        previous = atomic.read_json(out / MANIFEST)
        if previous.get("build_settings") == json.loads(json.dumps(settings)):
            return out
    sources = []
    for spec in inputs:
        try:
            sources.append(read_input(spec, text_field))
        except UnusableInput as e:
            if len(inputs) == 1:
                raise
            log.warning("skipping %s", e)
    if not sources:
        raise CorpusError(f"no usable text in {', '.join(inputs)}: every input was binary or not UTF-8")
    streams = [({"name": s.name, "licence": "user-supplied", "package": "-", "kind": s.kind, "language": "unknown"}, iter(s.items))
               for s in sources]
    return _write(out, streams, {"seed": seed, "embedded": False, "build_settings": settings}, progress)


def load_corpus(directory: Path) -> Corpus:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{directory} is not a corpus (no {MANIFEST}): build one with `monosemantic corpus build`")
    try:
        manifest = atomic.read_json(path)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path} is damaged ({e}): delete {directory} and build it again") from None
    missing = [s for s in manifest.get("shards", []) if not (directory / s).is_file()]
    if missing:
        raise CorpusError(f"{directory} is missing {', '.join(missing)}: delete it and build it again")
    return Corpus(directory, manifest)
