"""`monosemantic multilingual`: user mistakes are one line and exit 1, before any model
is loaded."""

from __future__ import annotations

import json
from pathlib import Path

from monosemantic.cli.main import main
from monosemantic.sae import SAEConfig, make_sae, save_sae



def _book_corpus(tmp_path: Path) -> Path:
    """A corpus directory holding an alignment of a two-language book (no documents needed)."""
    from monosemantic.data.parallel import Passage, write_parallel

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manifest.json").write_text(json.dumps({"format": "monosemantic-corpus/1"}))
    write_parallel(corpus, [Passage("debian-handbook", "p.html", "s", i, {"en-US": f"text {i}", "fr-FR": f"texte {i}"}) for i in range(30)])
    return corpus


def test_mistakes_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["multilingual", str(run), "--passages", "5"]) == 1
    assert "--passages must be >= 20" in capsys.readouterr().err
    assert main(["multilingual", str(run), "--corpus", str(_book_corpus(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "has no SAE" in err and len(err.strip().splitlines()) == 1
    save_sae(make_sae(SAEConfig("relu", d_in=8, n_latents=4)), run / "sae")
    assert main(["multilingual", str(run), "--corpus", str(tmp_path / "corpus"), "--languages", "en-US,xx-XX"]) == 1
    err = capsys.readouterr().err
    assert "xx-XX have no aligned passages: choose from en-US, fr-FR" in err and "Traceback" not in err
