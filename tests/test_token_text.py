"""Token sequences rendered by bytes, through the embedded model's real tokenizer:
Cyrillic, CJK, Vietnamese and ¶ split characters across tokens."""

from __future__ import annotations

import pytest

from monosemantic.token_text import piece_bytes, segments, segments_of, show_tokens, text_of, token_pieces, token_texts

TEXTS = ["Привет, мир! Как дела?", "日本語のテキストと中文", "Tiếng Việt có dấu: người, được", "¶ 3. Abschnitt § 2",
         "emoji 🎉 and naïve café"]


@pytest.fixture(scope="module")
def tok():
    from monosemantic.models.tokenizer import load_tokenizer

    return load_tokenizer("embedded")


@pytest.mark.parametrize("text", TEXTS)
def test_sequence_text_is_exact_and_never_replacement(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    one_by_one = [tok.decode([i]) for i in ids]
    assert any("\ufffd" in t for t in one_by_one)  # the bug: decoding token by token breaks these texts
    texts = show_tokens(tok, ids)
    assert len(texts) == len(ids)
    assert "".join(texts) == text == tok.decode(ids)
    assert not any("\ufffd" in t for t in texts)
    segs = segments_of(texts)
    assert [s.text for s in segs if s.text] == [s.text for s in segs]  # no empty span on screen
    assert segs[0].start == 0 and segs[-1].stop == len(ids)
    assert all(a.stop == b.start for a, b in zip(segs, segs[1:]))
    assert len(segs) < len(ids)  # some characters really were split and joined


def test_split_character_goes_to_its_first_token(tok):
    ids = tok("¶", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2
    assert show_tokens(tok, ids) == ["¶", ""]
    assert [(s.text, s.start, s.stop) for s in segments(token_pieces(tok, ids))] == [("¶", 0, 2)]


def test_cut_window_shows_hex_not_replacement(tok):
    ids = tok("日本", add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tok, ids)
    cut = token_texts(pieces[1:])  # a window that starts inside 日
    assert "\ufffd" not in "".join(cut) and cut[0].startswith("‹")
    assert text_of(pieces[:1]).startswith("‹")  # ... or ends inside it


def test_special_and_space_tokens(tok):
    ids = [tok.convert_tokens_to_ids("<|im_start|>")] + tok("user\n  x", add_special_tokens=False)["input_ids"]
    assert "".join(show_tokens(tok, ids)) == "<|im_start|>user\n  x"


def test_sentencepiece_pieces():
    # Gemma-style vocabularies: ▁ for space, <0xNN> byte-fallback tokens
    pieces = [piece_bytes(p, "sentencepiece") for p in ["▁Hello", "<0xE6>", "<0x97>", "<0xA5>", "▁世界"]]
    assert token_texts(pieces) == [" Hello", "日", "", "", " 世界"]
