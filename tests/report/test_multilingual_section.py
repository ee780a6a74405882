"""The report's multilingual section (report/multilingual.py): from a result the real
pipeline wrote, and an honest note when there is none."""

from __future__ import annotations

import re

from multilingual_helpers import write_tiny_result

from monosemantic.report import build_report


def test_section_shows_fractions_figures_and_examples(tiny_llama, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    result = write_tiny_result(tiny_llama, run)
    index = build_report(run)
    page = index.read_text()
    assert "<h2>Multilingual features</h2>" in page
    assert f"<b>{result['agnostic_fraction']:.1%}</b> are language-agnostic" in page
    for name in ("scores", "by_size"):
        assert f'src="multilingual_{name}.png"' in page
        assert (index.parent / f"multilingual_{name}.png").read_bytes()[:4] == b"\x89PNG"
    first = (result["top"] + result["top_same_token"])[0]
    assert f"feature {first['feature']}: r {first['score']:.3f}" in page
    assert "川" in page and "\ufffd" not in page
    assert len(re.findall(r"<td>ja-JP</td>", page)) >= 1


def test_section_without_an_analysis(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    page = build_report(run).read_text()
    assert "not analysed: run <code>monosemantic multilingual run</code>" in page
