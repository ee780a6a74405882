"""The static report: files exist, the HTML references images and pages that exist."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from feature_helpers import MULTILINGUAL, TinySAE, make_tokens, multilingual_tokens  # noqa: E402

from monosemantic.cli.main import build_parser  # noqa: E402
from monosemantic.features import build_feature_db  # noqa: E402
from monosemantic.report import build_report  # noqa: E402


def _links(page: Path) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#]+)"', page.read_text())


def _check_links(page: Path) -> None:
    for link in _links(page):
        assert not link.startswith(("http:", "https:", "//", "/")), link  # offline, relative
        assert (page.parent / link).is_file(), f"{page.name} links to missing {link}"


def test_report_from_a_full_run(tiny_llama, tmp_path):
    run = tmp_path / "run"
    sae = TinySAE(tiny_llama.d_model, 48, scale=3.0)
    build_feature_db(run, lm=tiny_llama, sae=sae, tokens=make_tokens(24, 32, tiny_llama.bos_id), layer=2, n_tokens=600, progress=False)
    with open(run / "metrics.jsonl", "w") as f:
        for step in range(0, 200, 10):
            f.write(json.dumps({"step": step, "tokens": step * 4096, "loss": 1.0 / (step + 1), "l0": 50 - step / 10,
                                "fve": step / 250, "dead_fraction": 0.1, "lr": 1e-3, "note": "text is skipped"}) + "\n")
        f.write('{"step": 2')  # a line cut by a kill
    (run / "eval.json").write_text(json.dumps({"fve": 0.8, "l0": 31.5, "dead_fraction": 0.05, "dense_fraction": 0.0,
                                               "loss_recovered": 0.9, "mse_normalised": 12.0, "log10_density_hist": [1, 2]}))
    index = build_report(run)
    assert index == run / "report" / "index.html"
    html = index.read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert set(images) == {"training_curves.png", "density.png", "l0.png"}
    for image in images:
        assert (index.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loss_recovered" in html and "0.9" in html
    _check_links(index)
    pages = list((run / "report" / "features").glob("*.html"))
    assert pages and all(f"features/{p.name}" in html for p in pages)
    for page in pages:
        _check_links(page)
    assert "background:rgba(255,120,0," in "".join(p.read_text() for p in pages)  # token highlighting


def test_report_shows_non_latin_text_whole(tiny_llama, tmp_path):
    import html as html_lib

    run = tmp_path / "run"
    tokens = multilingual_tokens(tiny_llama.tokenizer, 12, 32, tiny_llama.bos_id)
    build_feature_db(run, lm=tiny_llama, sae=TinySAE(tiny_llama.d_model, 48, scale=3.0), tokens=tokens, layer=2, n_tokens=300,
                     progress=False)
    build_report(run)
    text = "".join(html_lib.unescape(re.sub(r"<[^>]+>", "", p.read_text())) for p in (run / "report" / "features").glob("*.html"))
    assert "\ufffd" not in text
    assert any(word in text for word in ("Привет", "日本語", "Việt", "¶ 3")), "no multilingual example in the report"


def test_report_of_a_bare_run_says_what_is_missing(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"fve": 0.5, "log10_density_hist": [1, 3, 2], "log10_density_edges": [-3, -2, -1, 0]}))
    html = build_report(tmp_path).read_text()
    assert "no metrics.jsonl" in html and 'src="density.png"' in html and "features.db" in html


def test_cli_registers_features_and_report():
    parser = build_parser()
    args = parser.parse_args(["features", "runs/x", "--tokens", "5000", "--neurons", "--top-k", "7", "--force"])
    assert (args.tokens, args.neurons, args.top_k, args.force) == (5000, True, 7, True)
    assert parser.parse_args(["report", "runs/x"]).run == "runs/x"
    with pytest.raises(SystemExit):
        parser.parse_args(["features"])
