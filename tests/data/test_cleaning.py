import logging

import pytest

from monosemantic.data import build_corpus, load_corpus
from monosemantic.data.documents import MAX_CHARS, Cleaner, dedupe_key, looks_binary, normalise, split_long
from monosemantic.errors import CorpusError


def test_normalise_keeps_indentation_and_collapses_blank_lines():
    assert normalise("def f():\r\n    return 1   \r\n\n\n\n\nx = 2\n\n") == "def f():\n    return 1\n\nx = 2"


def test_binary_detection():
    assert looks_binary(b"abc\x00def")
    assert looks_binary("".join(chr(i % 32) for i in range(1000)))
    assert not looks_binary("plain text\twith tabs\nand lines\f")


def test_split_long_respects_cap_and_keeps_text():
    text = "\n\n".join(f"paragraph {i} " + "word " * 200 for i in range(40))
    parts = split_long(text)
    assert len(parts) > 1 and all(len(p) <= MAX_CHARS for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_cleaner_drops_short_binary_and_near_duplicates():
    c = Cleaner()
    items = [
        ("a", "A fortune: you will write tests today."),
        ("b", "a fortune -- you will  write tests today!"),  # same words, other punctuation/case
        ("c", "short"),
        ("d", "binary\x00\x01\x02\x03 but long enough to count"),
        ("e", "Another, different fortune about packing tokens."),
    ]
    kept = list(c.clean_all(items))
    assert [t for t, _ in kept] == ["a", "e"]
    assert c.dropped == {"short": 1, "binary": 1, "duplicate": 1}
    assert dedupe_key("Hello, World") == dedupe_key("hello world")


def test_inputs_build_and_iterate_deterministically(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("The first document is about cats and dogs.")
    (tmp_path / "docs" / "sub").mkdir()
    (tmp_path / "docs" / "sub" / "b.md").write_text("# Second\n\nThe second one is about parrots.")
    (tmp_path / "c.jsonl").write_text('{"text": "A JSONL document about fish and chips."}\n\n{"text": "Another JSONL line, about trees."}\n')
    out = build_corpus([str(tmp_path / "docs"), str(tmp_path / "c.jsonl")], tmp_path / "corpus", progress=False)
    corpus = load_corpus(out)
    m = corpus.manifest
    assert m["total_documents"] == 4 == len(corpus)
    assert m["sources"][str(tmp_path / "docs")]["documents"] == 2
    assert m["sources"][str(tmp_path / "c.jsonl")]["licence"] == "user-supplied"
    assert [d.text for d in corpus] == [d.text for d in load_corpus(out)]
    assert [d.id for d in corpus] == [0, 1, 2, 3]
    assert build_corpus([str(tmp_path / "docs"), str(tmp_path / "c.jsonl")], tmp_path / "corpus", progress=False) == out


def test_text_field_option(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"body": "A JSONL document with another field name."}\n')
    with pytest.raises(CorpusError, match='line 1 has no "text" field'):
        build_corpus([str(tmp_path / "c.jsonl")], tmp_path / "corpus", progress=False)
    out = build_corpus([str(tmp_path / "c.jsonl")], tmp_path / "corpus", progress=False, text_field="body")
    assert len(load_corpus(out)) == 1


@pytest.mark.parametrize("case, match", [
    ("missing", "does not exist"),
    ("empty_file", "empty"),
    ("empty_dir", "no usable text"),
    ("binary", "looks binary"),
    ("latin1", r"not valid UTF-8 \(byte offset 9\)"),
    ("jsonl_no_field", 'line 2 has no "text" field'),
    ("jsonl_bad", "line 1 is not valid JSON"),
    ("only_short", "no usable text"),
])
def test_bad_inputs_are_one_line_corpus_errors(tmp_path, case, match):
    p = tmp_path / "input"
    if case == "empty_file":
        p.write_text("")
    elif case == "empty_dir":
        p.mkdir()
        (p / ".hidden").write_text("ignored because hidden, though it is long enough")
    elif case == "binary":
        p.write_bytes(bytes(range(256)) * 10)
    elif case == "latin1":
        p.write_bytes("caf\xe9 is fine but caf\xe9 in latin-1 is not".encode("latin-1")[:40])
        p.write_bytes(b"caf\xc3\xa9 ok \xe9 no more text after the bad byte")
    elif case == "jsonl_no_field":
        p = tmp_path / "input.jsonl"
        p.write_text('{"text": "fine line of text here"}\n{"other": "no text"}\n')
    elif case == "jsonl_bad":
        p = tmp_path / "input.jsonl"
        p.write_text("{not json\n")
    elif case == "only_short":
        p.write_text("tiny")
    with pytest.raises(CorpusError, match=match) as e:
        build_corpus([str(p)], tmp_path / "corpus", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "corpus").exists()


def test_bad_files_in_a_directory_are_skipped_with_a_warning(tmp_path, caplog):
    d = tmp_path / "in"
    d.mkdir()
    (d / "good.txt").write_text("A perfectly good document of plain text.")
    (d / "image.bin").write_bytes(b"\x89PNG\x00\x00\x01\x02" * 100)
    (d / "legacy.txt").write_bytes(b"Stra\xdfe in Latin-1, which is not UTF-8 at all")
    with caplog.at_level(logging.WARNING):
        out = build_corpus([str(d)], tmp_path / "corpus", progress=False)
    assert len(load_corpus(out)) == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "image.bin looks binary" in messages and "legacy.txt is not valid UTF-8 (byte offset 4)" in messages


def test_a_bad_file_among_good_inputs_is_skipped(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("A perfectly good document of plain text.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe broken encoding, long enough to matter")
    with caplog.at_level(logging.WARNING):
        out = build_corpus([str(tmp_path / "good.txt"), str(tmp_path / "bad.txt")], tmp_path / "corpus", progress=False)
    assert len(load_corpus(out)) == 1 and "bad.txt" in caplog.text


def test_hf_input_without_datasets_says_so(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(CorpusError, match="need the `datasets` package"):
        build_corpus(["hf:wikitext:train"], tmp_path / "corpus", progress=False)


def test_load_corpus_missing(tmp_path):
    with pytest.raises(CorpusError, match="corpus build"):
        load_corpus(tmp_path)
