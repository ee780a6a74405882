"""Packing a corpus into RUN/tokens: fixed-length contexts for harvesting.

Every context starts with `bos_id` (the attention sink lands there and harvest
drops it, DESIGN.md); documents follow in a seeded shuffled order, tokenised without
special tokens (Gemma's tokenizer would add its own BOS mid-context) and separated
by `sep_id`, each continuing into the next context where it does not fit. Files:
contexts.npy, doc_ids.npy, doc_pos.npy ([N, ctx_len] int32; -1 for BOS and
separators), docs.jsonl (the text of every document used, for tracing) and
tokens.json, written last, which marks the set complete."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import ConfigError, CorpusError, StoreError
from .corpus import Corpus

log = logging.getLogger(__name__)

FORMAT = "monosemantic-tokens/1"
TOKENS_JSON = "tokens.json"
DOCS = "docs.jsonl"
BATCH_DOCS = 64  # documents per tokenizer call: ≤ 64 x 8k chars, and batched for the fast tokenizer
_PROBE = "The quick brown fox, 1234 façade 日本語 — def f(x):\n    return x ** 2"


class PackedTokens:
    def __init__(self, directory: Path, contexts: np.ndarray, doc_ids: np.ndarray, doc_pos: np.ndarray, info: dict):
        self.directory, self.contexts, self.doc_ids, self.doc_pos, self.info = directory, contexts, doc_ids, doc_pos, info
        self._docs: dict[int, dict] | None = None

    def _load_docs(self) -> dict[int, dict]:
        if self._docs is None:
            self._docs = {}
            path = self.directory / DOCS
            if path.is_file():
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        d = json.loads(line)
                        self._docs[d["doc_id"]] = d
        return self._docs

    def document(self, doc_id: int) -> str | None:
        """The text of a document in these contexts; None for -1 (BOS, separator) or unknown ids."""
        d = self._load_docs().get(int(doc_id))
        return None if d is None else d["text"]

    def document_info(self, doc_id: int) -> dict | None:
        """{"doc_id", "source", "title", "text"} or None."""
        return self._load_docs().get(int(doc_id))


def tokenizer_fingerprint(tokenizer) -> str:
    ids = _encode(tokenizer, [_PROBE])[0]
    return hashlib.sha1(f"{type(tokenizer).__name__}:{len(tokenizer)}:{ids}".encode()).hexdigest()[:16]


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    # split_special_tokens: a document that happens to contain "<|endoftext|>" must not
    # produce a real separator or BOS in the middle of a context.
    try:
        return tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    except TypeError:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _settings(corpus: Corpus, tokenizer, ctx_len: int, bos_id: int, sep_id: int | None, max_contexts: int, seed: int) -> dict:
    return {
        "format": FORMAT, "ctx_len": ctx_len, "bos_id": bos_id, "sep_id": sep_id, "max_contexts": max_contexts,
        "seed": seed, "corpus_digest": corpus.digest, "tokenizer": tokenizer_fingerprint(tokenizer),
    }


def _pack(corpus: Corpus, tokenizer, ctx_len: int, bos_id: int, sep_id: int | None, max_contexts: int, seed: int):
    """Token stream of shuffled documents, cut into max_contexts rows of ctx_len - 1."""
    docs = list(corpus)
    order = np.random.default_rng(seed).permutation(len(docs))
    need = max_contexts * (ctx_len - 1)
    tokens, ids, pos, used, have = [], [], [], [], 0
    for start in range(0, len(order), BATCH_DOCS):
        batch = [docs[i] for i in order[start : start + BATCH_DOCS]]
        for doc, enc in zip(batch, _encode(tokenizer, [d.text for d in batch])):
            if not enc:
                continue
            if have and sep_id is not None:
                tokens.append(np.array([sep_id], dtype=np.int32))
                ids.append(np.array([-1], dtype=np.int32))
                pos.append(np.array([-1], dtype=np.int32))
                have += 1
            n = len(enc)
            tokens.append(np.asarray(enc, dtype=np.int32))
            ids.append(np.full(n, doc.id, dtype=np.int32))
            pos.append(np.arange(n, dtype=np.int32))
            used.append(doc)
            have += n
            if have >= need:
                break
        if have >= need:
            break
    n_contexts = min(max_contexts, have // (ctx_len - 1))
    if n_contexts == 0:
        raise CorpusError(
            f"too little text: the corpus gives {have:,} tokens, fewer than one context of {ctx_len - 1} "
            "(add more text or lower --ctx-len)"
        )
    if n_contexts < max_contexts:
        log.warning("the corpus fills only %d of the %d contexts asked for (%d tokens)", n_contexts, max_contexts, have)
    body = n_contexts * (ctx_len - 1)

    def rows(parts, first):
        flat = np.concatenate(parts)[:body].reshape(n_contexts, ctx_len - 1)
        return np.concatenate([np.full((n_contexts, 1), first, dtype=np.int32), flat], axis=1)  # [N, ctx_len]

    doc_ids = rows(ids, -1)
    kept = set(np.unique(doc_ids[doc_ids >= 0]).tolist())
    return rows(tokens, bos_id), doc_ids, rows(pos, -1), [d for d in used if d.id in kept], have


def load_tokens(directory: Path) -> PackedTokens:
    """RUN/tokens, memory-mapped."""
    directory = Path(directory)
    info_path = directory / TOKENS_JSON
    if not info_path.is_file():
        raise StoreError(f"{directory} has no packed tokens: run `monosemantic harvest {directory.parent}` first")
    try:
        info = atomic.read_json(info_path)
        arrays = [np.load(directory / f"{name}.npy", mmap_mode="r") for name in ("contexts", "doc_ids", "doc_pos")]
    except (ValueError, OSError) as e:
        raise StoreError(f"{directory} holds damaged tokens ({e}): run `monosemantic harvest {directory.parent} --force`") from e
    return PackedTokens(directory, *arrays, info)


def prepare_run_tokens(
    out_dir: Path, corpus: Corpus, tokenizer, ctx_len: int, bos_id: int, sep_id: int | None, max_contexts: int, seed: int
) -> PackedTokens:
    """Pack `corpus` into out_dir (or reuse what an identical earlier call packed)."""
    if ctx_len < 2 or max_contexts < 1:
        raise ConfigError("ctx_len must be at least 2 and max_contexts at least 1")
    out_dir = Path(out_dir)
    settings = _settings(corpus, tokenizer, ctx_len, bos_id, sep_id, max_contexts, seed)
    info_path = out_dir / TOKENS_JSON
    if info_path.is_file():
        previous = atomic.read_json(info_path)
        diffs = [f"{k}: {previous.get(k)!r} -> {v!r}" for k, v in settings.items() if previous.get(k) != v]
        if diffs:
            raise ConfigError(
                f"{out_dir} holds tokens packed with other settings ({'; '.join(diffs)}): "
                "use --force to pack them again, or a new run directory"
            )
        return load_tokens(out_dir)
    contexts, doc_ids, doc_pos, used, have = _pack(corpus, tokenizer, ctx_len, bos_id, sep_id, max_contexts, seed)
    atomic.save_npy(out_dir / "contexts.npy", contexts)
    atomic.save_npy(out_dir / "doc_ids.npy", doc_ids)
    atomic.save_npy(out_dir / "doc_pos.npy", doc_pos)
    lines = "".join(json.dumps({"doc_id": d.id, "source": d.source, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n" for d in used)
    atomic.write_bytes(out_dir / DOCS, lines.encode())
    info = {
        **settings,
        "n_contexts": int(contexts.shape[0]),
        "n_tokens": int(contexts.size),
        "n_documents": len(used),
        "tokens_available": int(have),
        "digest": hashlib.sha1(np.ascontiguousarray(contexts).tobytes()).hexdigest()[:16],
    }
    atomic.write_json(info_path, info)  # last: marks the set complete
    return load_tokens(out_dir)
