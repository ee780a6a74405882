"""The report's multilingual section, from RUN/analysis/multilingual/result.json
(`monosemantic multilingual RUN`): the fractions with their threshold, the figures
(copied next to index.html), and the top features side by side in each language."""

from __future__ import annotations

import html
from pathlib import Path

from .. import atomic
from ..analysis.multilingual_run import OUT, load_result


def _passage(shown: dict, highlight) -> str:
    return highlight(shown["tokens"], shown["acts"], shown["max"] or 1.0)


def section(run_dir: Path, out: Path, highlight) -> str:
    """HTML for index.html; `highlight` renders tokens by bytes with activations (build.highlight)."""
    r = load_result(run_dir)
    head = "<h2>Multilingual features</h2>"
    if r is None:
        return head + f'<p class="note">not analysed: run <code>monosemantic multilingual {html.escape(run_dir.name)}</code></p>'
    parts = [head, f'<p>{r["n_passages"]} passages ({html.escape(", ".join(r.get("sources", [])))}) aligned in {len(r["languages"])} languages '
                   f'({html.escape(", ".join(r["languages"]))}), {html.escape(r["pool"])} activation per passage. '
                   f'Of {r["live"]:,} live features, <b>{r["agnostic_fraction"]:.1%}</b> are language-agnostic ({r["cross_lingual_fraction"]:.1%} cross-lingual, '
                   f'{r["same_token_fraction"]:.1%} on the same untranslated token in every language) and '
                   f'<b>{r["specific_fraction"]:.1%}</b> language-specific (threshold r &gt; {r["threshold"]:.3f}, the shuffled '
                   f'baseline\'s {r["config"]["quantile"]:.0%} quantile; {r["baseline_agnostic_fraction"]:.1%} of shuffled scores pass it).</p>',
             f'<p class="note">{html.escape(r["rule"])}</p>']
    for name in ("scores", "by_size"):
        src = run_dir / OUT / f"{name}.png"
        if src.is_file():
            atomic.write_bytes(out / f"multilingual_{name}.png", src.read_bytes())
            parts.append(f'<img src="multilingual_{name}.png" alt="multilingual {name}">')
    if len(r["by_size"]) > 1:
        rows = "".join(f'<tr><td>{html.escape(s["run"])}</td><td class="num">{s["n_latents"]:,}</td><td class="num">{s["agnostic_fraction"]:.1%}</td>'
                       f'<td class="num">{s["cross_lingual_fraction"]:.1%}</td><td class="num">{s["specific_fraction"]:.1%}</td></tr>' for s in sorted(r["by_size"], key=lambda s: s["n_latents"]))
        parts.append(f"<table><tr><th>run</th><th>latents</th><th>agnostic</th><th>cross-lingual</th><th>specific</th></tr>{rows}</table>")
    for title, entries in (("Cross-lingual features (different peak tokens per language)", r["top"][:5]),
                           ("Same-token features, for contrast (an untranslated string)", r.get("top_same_token", [])[:2])):
        parts.append(f"<h3>{title}</h3>" + ("" if entries else '<p class="note">none above the threshold</p>'))
        for t in entries:
            parts.append(f'<h4>feature {t["feature"]}: r {t["score"]:.3f} <span class="note">(shuffled {t["baseline"]:.3f}, '
                         f'length r {t["length_r"]:.2f})</span></h4>')
            ex = t["examples"][0] if t["examples"] else None
            if ex:
                rows = "".join(f'<tr><td>{html.escape(lang)}</td><td><div class="ex">{_passage(shown, highlight)}</div></td></tr>'
                               for lang, shown in ex["languages"].items())
                parts.append(f'<p class="note">{html.escape(ex["key"])}</p><table>{rows}</table>')
    return "\n".join(parts)
