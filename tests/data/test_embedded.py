"""The embedded corpus from this machine's Debian packages, at a small cap."""

import time

from monosemantic.data import build_corpus, load_corpus
from monosemantic.data.corpus import build_embedded
from monosemantic.data.sources import embedded_sources


def test_embedded_corpus_small_build_from_real_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MONOSEMANTIC_CACHE", str(tmp_path))
    start = time.perf_counter()
    out = build_embedded(tmp_path / "corpus" / "v1", progress=False, cap_scale=0.01)
    assert time.perf_counter() - start < 30
    corpus = load_corpus(out)
    m = corpus.manifest
    assert "python-stdlib" in m["sources"]
    for name, s in m["sources"].items():
        assert s["kind"] in ("code", "prose", "multilingual")
        assert s["documents"] > 0 and s["licence"] and s["package"] and s["language"]
    assert m["total_documents"] == len(corpus) == sum(s["documents"] for s in m["sources"].values())
    assert m["total_characters"] == sum(len(d.text) for d in corpus)
    expected = {s.name for s in embedded_sources() if s.available()}
    assert set(m["sources"]) <= expected and len(m["sources"]) >= len(expected) - 10  # tiny translations may vanish
    texts = [d.text for d in corpus]
    assert len(set(texts)) == len(texts)
    # the cache is reused, not rebuilt
    assert build_corpus(None, None, progress=False) == out
    assert load_corpus(out).manifest["digest"] == m["digest"]


def test_missing_debian_packages_fall_back_to_stdlib(tmp_path, monkeypatch, caplog):
    from monosemantic.data import sources

    real = sources.embedded_sources
    monkeypatch.setattr("monosemantic.data.corpus.embedded_sources",
                        lambda: [s if s.kind == "code" else s.__class__(**{**s.__dict__, "available": lambda: False}) for s in real()])
    out = build_embedded(tmp_path / "c", progress=False, cap_scale=0.01)
    m = load_corpus(out).manifest
    assert list(m["sources"]) == ["python-stdlib"]
    assert "only Python standard-library code" in m["note"]
    assert "apt-get install perl-doc" in caplog.text
    assert caplog.text.count("apt-get install debian-handbook") == 1  # one warning per package
