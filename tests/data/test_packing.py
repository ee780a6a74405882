import json

import numpy as np
import pytest

from monosemantic.data import build_corpus, load_corpus, load_tokens, prepare_run_tokens
from monosemantic.errors import ConfigError, CorpusError, StoreError

CTX = 32
BOS, SEP = 1, 0


@pytest.fixture
def corpus(tmp_path):
    lines = [json.dumps({"text": f"Document number {i} talks about topic {i * 7 % 13}. " * (1 + i % 5)}) for i in range(40)]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    return load_corpus(build_corpus([str(tmp_path / "docs.jsonl")], tmp_path / "corpus", progress=False))


def pack(tmp_path, corpus, tokenizer, name="tokens", **kw):
    args = dict(ctx_len=CTX, bos_id=BOS, sep_id=SEP, max_contexts=12, seed=0) | kw
    return prepare_run_tokens(tmp_path / name, corpus, tokenizer, **args)


def test_layout_bos_separators_and_positions(tmp_path, corpus, tokenizer):
    t = pack(tmp_path, corpus, tokenizer)
    c, ids, pos = (np.asarray(a) for a in (t.contexts, t.doc_ids, t.doc_pos))
    assert c.shape == ids.shape == pos.shape == (12, CTX) and c.dtype == np.int32
    assert (c[:, 0] == BOS).all() and (ids[:, 0] == -1).all() and (pos[:, 0] == -1).all()
    assert (c[:, 1:] != BOS).all()  # no BOS anywhere else
    # the stream without the BOS column: separators exactly between two documents
    flat_c, flat_i, flat_p = c[:, 1:].ravel(), ids[:, 1:].ravel(), pos[:, 1:].ravel()
    assert ((flat_c == SEP) == (flat_i == -1)).all()
    docs_in_order = [flat_i[0]]
    for k in range(1, len(flat_i)):
        if flat_i[k] >= 0 and flat_i[k - 1] >= 0:
            assert flat_i[k] == flat_i[k - 1] and flat_p[k] == flat_p[k - 1] + 1  # no doc runs into another
        if flat_i[k] >= 0 and flat_i[k - 1] == -1:
            assert flat_p[k] == 0 and flat_i[k] != docs_in_order[-1]
            docs_in_order.append(flat_i[k])
    # a document continues into the next context with its positions continuing
    crossing = [r for r in range(11) if ids[r, -1] >= 0 and ids[r, -1] == ids[r + 1, 1]]
    assert crossing
    for r in crossing:
        assert pos[r + 1, 1] == pos[r, -1] + 1
    # document positions index the document's own tokens
    for r in range(12):
        for k in range(1, CTX):
            if ids[r, k] >= 0:
                enc = tokenizer(t.document(ids[r, k]), add_special_tokens=False)["input_ids"]
                assert enc[pos[r, k]] == c[r, k]


def test_seed_determinism(tmp_path, corpus, tokenizer):
    a = pack(tmp_path, corpus, tokenizer, "a", seed=3)
    b = pack(tmp_path, corpus, tokenizer, "b", seed=3)
    other = pack(tmp_path, corpus, tokenizer, "c", seed=4)
    np.testing.assert_array_equal(a.contexts, b.contexts)
    np.testing.assert_array_equal(a.doc_ids, b.doc_ids)
    assert not np.array_equal(a.contexts, other.contexts)
    assert a.info["digest"] == b.info["digest"] != other.info["digest"]


class AddsBos:
    """A tokenizer that, like Gemma's, prepends BOS unless told not to."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, texts, add_special_tokens=True, **kw):
        out = self.inner(texts, add_special_tokens=False, **kw)
        if add_special_tokens:
            out["input_ids"] = [[BOS] + ids for ids in out["input_ids"]]
        return out

    def __len__(self):
        return len(self.inner)


def test_add_special_tokens_false_is_respected(tmp_path, corpus, tokenizer):
    t = pack(tmp_path, corpus, AddsBos(tokenizer))
    c = np.asarray(t.contexts)
    assert (c[:, 0] == BOS).all() and (c[:, 1:] != BOS).all()
    np.testing.assert_array_equal(c, pack(tmp_path, corpus, tokenizer, "plain").contexts)


def test_special_token_text_inside_a_document_is_not_a_separator(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text("A document that mentions <|endoftext|> and <|im_start|> literally. " * 20)
    corpus = load_corpus(build_corpus([str(tmp_path / "a.txt")], tmp_path / "corpus", progress=False))
    t = pack(tmp_path, corpus, tokenizer, max_contexts=4)
    c = np.asarray(t.contexts)
    assert (c[:, 1:] != BOS).all() and (c[:, 1:] != SEP).all()


def test_resume_and_settings_mismatch(tmp_path, corpus, tokenizer, monkeypatch):
    first = pack(tmp_path, corpus, tokenizer)
    import monosemantic.data.packing as packing

    monkeypatch.setattr(packing, "_pack", lambda *a, **k: pytest.fail("re-packed instead of reusing"))
    again = pack(tmp_path, corpus, tokenizer)
    np.testing.assert_array_equal(first.contexts, again.contexts)
    with pytest.raises(ConfigError, match="ctx_len: 32 -> 16.*--force"):
        pack(tmp_path, corpus, tokenizer, ctx_len=16)
    with pytest.raises(ConfigError, match="seed"):
        pack(tmp_path, corpus, tokenizer, seed=1)


def test_stops_at_max_contexts_and_too_little_text(tmp_path, corpus, tokenizer):
    assert pack(tmp_path, corpus, tokenizer, "one", max_contexts=1).contexts.shape == (1, CTX)
    (tmp_path / "tiny.txt").write_text("Only a few words of text here.")
    tiny = load_corpus(build_corpus([str(tmp_path / "tiny.txt")], tmp_path / "tiny", progress=False))
    with pytest.raises(CorpusError, match="too little text"):
        pack(tmp_path, tiny, tokenizer, "tinytok")
    assert not (tmp_path / "tinytok" / "tokens.json").exists()


def test_load_tokens(tmp_path, corpus, tokenizer):
    with pytest.raises(StoreError, match="run `monosemantic harvest"):
        load_tokens(tmp_path / "run" / "tokens")
    pack(tmp_path, corpus, tokenizer, "run/tokens")
    t = load_tokens(tmp_path / "run" / "tokens")
    assert isinstance(t.contexts, np.memmap)
    doc = int(np.asarray(t.doc_ids)[0, 1])
    assert t.document(doc).startswith("Document number")
    assert t.document(-1) is None
    assert t.info["n_contexts"] == 12
