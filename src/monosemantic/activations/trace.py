"""Trace an activation row back to the text it came from."""

from __future__ import annotations

from pathlib import Path

from ..data import load_tokens
from ..errors import StoreError
from ..models.tokenizer import load_tokenizer
from ..token_text import segments_of, show_tokens
from .store import open_store

_NEWLINE = "⏎"


def _show(text: str) -> str:
    return text.replace("\n", _NEWLINE)


def _window_from_document(tokenizer, text: str, doc_pos: int, token_id: int, window: int) -> tuple[str, str, str] | None:
    """Before / token / after from the document's own text, which crosses context
    boundaries; None if re-tokenising does not reproduce the stored token."""
    try:
        enc = tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    except (TypeError, NotImplementedError, ValueError):
        return None
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if not 0 <= doc_pos < len(ids) or ids[doc_pos] != token_id:
        return None
    a, b = offsets[doc_pos]
    lo, hi = max(0, doc_pos - window), min(len(ids), doc_pos + window + 1)
    return text[offsets[lo][0] : a], text[a:b], text[b : offsets[hi - 1][1]]


def trace_row(run: str | Path, row: int, window: int = 24, tokenizer=None) -> str:
    """Row, context, document and `window` tokens either side with the token marked
    `[[token]]`. The tokenizer is loaded from the model the store names unless given."""

    store = open_store(run)
    info = store.row_info(row)
    run_dir = Path(run)
    if run_dir.name == "activations":
        run_dir = run_dir.parent
    tokens = load_tokens(run_dir / "tokens")
    ctx, pos = info["context_id"], info["position"]
    if not (0 <= ctx < tokens.contexts.shape[0] and 0 <= pos < tokens.contexts.shape[1]):
        raise StoreError(f"row {row} points at context {ctx} position {pos}, outside {run_dir}/tokens: the tokens were packed again after harvesting")
    if tokenizer is None:
        tokenizer = load_tokenizer(store.manifest.get("model_spec") or store.manifest.get("model") or "embedded")
    token_id = int(tokens.contexts[ctx, pos])
    doc_id, doc_pos = info["doc_id"], info["doc_pos"]
    doc = tokens.document_info(doc_id) if doc_id >= 0 else None
    parts = _window_from_document(tokenizer, doc["text"], doc_pos, token_id, window) if doc else None
    if parts is None:  # separators, or a tokenizer without offsets: decode the context itself
        ids = [int(t) for t in tokens.contexts[ctx]]
        lo, hi = max(0, pos - window), min(len(ids), pos + window + 1)
        texts = show_tokens(tokenizer, ids[lo:hi])  # by bytes: a character split across tokens stays whole
        seg = next(s for s in segments_of(texts) if s.start <= pos - lo < s.stop)  # the token with its whole character
        parts = ("".join(texts[: seg.start]), seg.text, "".join(texts[seg.stop :]))
    before, token, after = parts
    where = f'document {doc_id} ({doc["source"]}: {doc["title"]}), token {doc_pos} of it' if doc else "a document separator" if doc_id < 0 else f"document {doc_id}"
    return (
        f"row {row}: context {ctx}, position {pos}, {where}; token id {token_id}\n"
        f"…{_show(before)}[[{_show(token)}]]{_show(after)}…"
    )
