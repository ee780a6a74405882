"""Token sequences shown as text, by bytes.

Byte-level tokenizers (SmolLM2's BPE, Gemma's byte fallback) split a character that
takes several UTF-8 bytes across tokens: "日" is the two tokens b"\\xe6\\x97" and
b"\\xa5", "¶" is b"\\xc2" + b"\\xb6". Decoding tokens one at a time turns each half
into "�". Here a sequence is decoded from its tokens' bytes together, and each
character is given to the token where it starts, so

    texts = token_texts([b"\\xe6\\x97", b"\\xa5", b"x"])   # ["日", "", "x"]
    "".join(texts)                                        # the sequence's exact text

A token whose text is "" continues the character of the token before it: a display
joins it to that token (`segments`). Bytes that cannot be decoded (a window cut in
the middle of a character, an invalid sequence) show as `‹NN›` (hex), never as "�"
(and never as a `\\xNN` that the Python sources in the corpus could contain).
Every display of token ids (web UI, JSON API, report, autointerp labels, CLI) goes
through this module."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Segment:
    text: str
    start: int  # index of the segment's first token
    stop: int   # one past its last token


def _utf8_length(lead: int) -> int:
    """Length of the UTF-8 sequence a lead byte starts (1 for bytes that start none)."""
    if lead < 0xC2 or lead > 0xF4:
        return 1
    return 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


def _units(data: bytes) -> list[tuple[int, int, str]]:
    """(start, stop, text) of each character of `data`; an undecodable byte is its
    own unit, shown as ‹NN›."""
    out, i, n = [], 0, len(data)
    while i < n:
        if data[i] < 0x80:  # ASCII: most text, one byte each
            out.append((i, i + 1, chr(data[i])))
            i += 1
            continue
        length = _utf8_length(data[i])
        try:
            text = data[i : i + length].decode("utf-8") if length > 1 else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            out.append((i, i + 1, f"‹{data[i]:02x}›"))
            i += 1
        else:
            out.append((i, i + length, text))
            i += length
    return out


def token_texts(pieces: Sequence[bytes]) -> list[str]:
    """Per token, the characters that start in it ("" for a token that only
    continues the previous token's character)."""
    data = b"".join(pieces)
    owner: list[int] = []  # token index of every byte
    for t, piece in enumerate(pieces):
        owner.extend([t] * len(piece))
    texts = [""] * len(pieces)
    for start, _, text in _units(data):
        texts[owner[start]] += text
    return texts


def segments(pieces: Sequence[bytes]) -> list[Segment]:
    """Runs of adjacent tokens that no character crosses, with their text: what a
    display shows as one highlighted span."""
    return segments_of(token_texts(pieces))


def segments_of(texts: Sequence[str]) -> list[Segment]:
    """The same from `token_texts`' output (e.g. a JSON `tokens` list): a "" token
    joins the segment before it."""
    out: list[Segment] = []
    for i, text in enumerate(texts):
        if text == "" and out:
            out[-1] = Segment(out[-1].text, out[-1].start, i + 1)
        else:
            out.append(Segment(text, i, i + 1))
    return out


def text_of(pieces: Sequence[bytes]) -> str:
    return "".join(token_texts(pieces))


# --- a tokenizer's vocabulary as bytes ----------------------------------------------
def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte (tokens are stored as these)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _decoder_types(decoder: dict | None) -> set[str]:
    if not decoder:
        return set()
    types = {decoder.get("type", "")}
    for sub in decoder.get("decoders") or []:
        types |= _decoder_types(sub)
    return types


def piece_bytes(piece: str, scheme: str, byte_decoder: dict[str, int] | None = None) -> bytes:
    """One vocabulary entry (as `convert_ids_to_tokens` gives it) as raw bytes.
    scheme: "byte_level" (GPT-2 style) or "sentencepiece" (▁ for space, <0xNN> bytes)."""
    if scheme == "byte_level":
        try:
            return bytes(byte_decoder[c] for c in piece)
        except KeyError:  # not a byte-level entry (an added token): its own text
            return piece.encode("utf-8")
    m = _BYTE_FALLBACK.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece.replace("\u2581", " ").encode("utf-8")


def token_pieces(tokenizer, token_ids: Sequence[int]) -> list[bytes]:
    """The raw bytes of each token id (special and added tokens: their text)."""
    ids = [int(i) for i in token_ids]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    types = _decoder_types(spec.get("decoder"))
    if "ByteLevel" in types:
        scheme, byte_decoder = "byte_level", _byte_level_decoder()
    elif "ByteFallback" in types or "Metaspace" in types or (spec.get("model") or {}).get("byte_fallback"):
        scheme, byte_decoder = "sentencepiece", None
    else:  # an unknown scheme: whole tokens decoded one by one (what transformers shows)
        return [tokenizer.decode([i]).encode("utf-8") for i in ids]
    added = {int(i): t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    size = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens([i for i in ids if 0 <= i < size])
    it = iter(pieces)
    out = []
    for i in ids:
        piece = next(it) if 0 <= i < size else None
        if i in added:
            out.append(added[i].encode("utf-8"))
        elif piece is not None:
            out.append(piece_bytes(piece, scheme, byte_decoder))
        else:
            out.append(b"")
    return out


def vocab_bytes(tokenizer, size: int | None = None) -> list[bytes]:
    """The raw bytes of token ids 0..size-1."""
    return token_pieces(tokenizer, range(len(tokenizer) if size is None else size))


def show_tokens(tokenizer, token_ids: Sequence[int]) -> list[str]:
    """Display text per token of one sequence, straight from a tokenizer (CLI output)."""
    return token_texts(token_pieces(tokenizer, token_ids))
