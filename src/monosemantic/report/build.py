"""Write RUN/report/: index.html, PNG plots and one static page per linked feature."""

from __future__ import annotations

import html
import math
import shutil
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import MonosemanticError
from ..features import FeatureDB, FeatureDBError
from ..run import Run
from ..token_text import segments_of
from . import plots
from .family import family_section

N_PAGES = 50  # most and least dense live features, each

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; line-height: 1.4; }
h1, h2, h3 { font-weight: 600; } table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } img { max-width: 100%; }
.ex { font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; margin: 4px 0; padding: 4px; border-left: 3px solid #ddd; }
.ex .a { color: #888; font-size: 11px; margin-right: 8px; } .ex b { outline: 1px solid #c00; font-weight: normal; }
.cols { display: flex; gap: 3em; flex-wrap: wrap; } .bar { background: #3b6ea5; height: 10px; display: inline-block; }
.note { color: #777; } a { color: #1a5ea8; }
"""


def _page(title: str, body: str, css_href: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<link rel=\"stylesheet\" href=\"{css_href}\"></head><body>\n{body}\n</body></html>\n")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return html.escape(str(v))


def _show_token(text: str) -> str:
    return html.escape(text.replace("\n", "⏎\n").replace("\t", "⇥"))


def highlight(tokens: list[str], acts: list[float], scale: float, mark: int | None = None) -> str:
    """Tokens as spans whose orange background grows with the activation (relative
    to `scale`, the feature's max); the hover title gives the value. Tokens that split
    a character are one span (token_text.segments_of), at their strongest activation."""
    out = []
    for seg in segments_of(tokens):
        a = max(acts[seg.start : seg.stop])
        alpha = min(max(a / scale, 0.0), 1.0) if scale > 0 else 0.0
        style = f' style="background:rgba(255,120,0,{alpha:.2f})"' if alpha > 0.005 else ""
        span = f'<span title="{a:.4g}"{style}>{_show_token(seg.text)}</span>'
        out.append(f"<b>{span}</b>" if mark is not None and seg.start <= mark < seg.stop else span)
    return "".join(out)


def _examples_html(examples, scale: float) -> str:
    if not examples:
        return '<p class="note">none</p>'
    return "\n".join(
        f'<div class="ex"><span class="a">{e.activation:.3g}</span>{highlight(e.tokens, e.acts, scale, e.position - e.start)}</div>'
        for e in examples
    )


def feature_page(feature, linked: set[int]) -> str:
    """One feature as static HTML; neighbours link to pages that exist."""
    f = feature
    label = "Feature" if f.kind == "feature" else "Neuron"
    parts = [f'<p><a href="../index.html">← report</a></p><h1>{label} {f.id}</h1>']
    for e in f.explanations or ([{"explainer": "", "text": f.explanation}] if f.explanation else []):
        by = f' <span class="muted">({html.escape(e["explainer"])})</span>' if e["explainer"] else ""
        parts.append(f"<p><i>{html.escape(e['text'])}</i>{by}</p>")  # N2G's patterns and any LLM sentence
    stats = [("density", f"{f.density:.3e}"), ("tokens fired on", f"{f.count:,}"), ("max activation", _fmt(f.max_act)), ("mean activation (when firing)", _fmt(f.mean_act))]
    stats += [(f"score · {html.escape(s['scorer'])}", _fmt(s["score"])) for s in sorted(f.scores, key=lambda s: s["scorer"])]
    parts.append("<table>" + "".join(f'<tr><td>{k}</td><td class="num">{v}</td></tr>' for k, v in stats) + "</table>")
    # histogram as CSS bars over the non-empty bins
    hist = np.asarray(f.histogram)
    nz = np.nonzero(hist)[0]
    if len(nz):
        peak = hist.max()
        rows = "".join(
            f'<tr><td class="num">≥ {10 ** f.hist_log10_edges[i]:.3g}</td><td><span class="bar" style="width:{300 * hist[i] / peak:.0f}px"></span> {hist[i]:,}</td></tr>'
            for i in range(nz[0], nz[-1] + 1)
        )
        parts.append(f"<h2>Activation histogram</h2><table>{rows}</table>")
    effects = lambda xs: "".join(f'<tr><td>{_show_token(t.token)}</td><td class="num">{t.value:+.3f}</td></tr>' for t in xs)  # noqa: E731
    link = lambda i: f'<a href="{f.kind}-{i}.html">{i}</a>' if i in linked else str(i)  # noqa: E731
    nbs = "".join(f'<tr><td>{link(i)}</td><td class="num">{c:.3f}</td></tr>' for i, c in f.neighbours)
    parts.append(
        '<div class="cols">'
        f"<div><h3>Promoted tokens</h3><table>{effects(f.promoted)}</table></div>"
        f"<div><h3>Suppressed tokens</h3><table>{effects(f.suppressed)}</table></div>"
        f"<div><h3>Nearest by decoder cosine</h3><table>{nbs}</table></div></div>"
    )
    parts.append(f"<h2>Top activations</h2>{_examples_html(f.top, f.max_act)}")
    for iv in f.intervals:
        parts.append(f"<h3>Interval {iv.index}: activation {iv.lo:.3g} – {iv.hi:.3g}</h3>{_examples_html(iv.examples, f.max_act)}")
    parts.append(f"<h2>Non-activating contexts</h2>{_examples_html(f.negatives, f.max_act)}")
    return _page(f"{label} {f.id}", "\n".join(parts), "../style.css")


def build_report(run: Run | str | Path, n_pages: int = N_PAGES) -> Path:
    """Write RUN/report/ from whatever the run holds (metrics.jsonl, eval.json,
    features.db); returns the path of index.html."""
    run = Run.of(run)
    run_dir = run.dir
    if not run_dir.is_dir():
        raise MonosemanticError(f"{run_dir} is not a run directory")
    out = run_dir / "report"
    shutil.rmtree(out / "features", ignore_errors=True)
    (out / "features").mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out / "style.css", CSS.encode())
    body = [f"<h1>Run {html.escape(run_dir.resolve().name)}</h1>"]
    notes = []

    config_path = run_dir / "config.json"
    if config_path.is_file():
        summary = {stage: settings for stage, settings in atomic.read_json(config_path).items() if isinstance(settings, dict)}
        body.append("<p class=\"note\">" + "; ".join(
            f"{html.escape(stage)}: " + ", ".join(f"{html.escape(str(k))}={_fmt(v)}" for k, v in s.items() if not isinstance(v, (dict, list)))
            for stage, s in summary.items()) + "</p>")

    records = run.metrics()
    body.append("<h2>Training</h2>")
    if records and plots.training_curves(records, out / "training_curves.png"):
        body.append(f'<img src="training_curves.png" alt="training curves"><p class="note">{len(records):,} logged steps</p>')
    else:
        body.append('<p class="note">no metrics.jsonl</p>')

    body.append("<h2>Evaluation</h2>")
    eval_path = run_dir / "eval.json"
    evals = atomic.read_json(eval_path) if eval_path.is_file() else None
    if evals:
        rows = "".join(f'<tr><td>{html.escape(k)}</td><td class="num">{_fmt(v)}</td></tr>'
                       for k, v in sorted(evals.items()) if isinstance(v, (int, float, str)) and not isinstance(v, bool))
        body.append(f"<table>{rows}</table>")
    else:
        body.append('<p class="note">no eval.json</p>')

    db = None
    try:
        db = FeatureDB(run_dir, readonly=True)
    except FeatureDBError as e:
        notes.append(str(e))
    body.append("<h2>Feature density</h2>")
    if db is not None:
        densities = db.densities()
        plots.density_histogram(densities, int(db.meta["n_tokens"]), out / "density.png")
        plots.l0_histogram(db.meta["l0_hist"], out / "l0.png")
        body.append('<img src="density.png" alt="density histogram"><h2>L0</h2><img src="l0.png" alt="L0 histogram">')
    elif evals and "log10_density_hist" in evals:
        plots.density_from_eval(evals["log10_density_hist"], evals["log10_density_edges"], out / "density.png")
        body.append('<img src="density.png" alt="density histogram">')
    else:
        body.append('<p class="note">no features.db or eval.json</p>')

    body.append("<h2>Features</h2>")
    if db is not None:
        with db:
            dense = db.list(sort="density", descending=True, live_only=True, limit=n_pages)
            sparse = db.list(sort="density", descending=False, live_only=True, limit=n_pages)
            linked = {s.id for s in dense} | {s.id for s in sparse}
            for fid in sorted(linked):
                atomic.write_bytes(out / "features" / f"feature-{fid}.html", feature_page(db.get(fid), linked).encode())

            def listing(title, items):
                rows = "".join(f'<tr><td><a href="features/feature-{s.id}.html">{s.id}</a></td><td class="num">{s.density:.3e}</td>'
                               f'<td class="num">{s.max_act:.3g}</td><td>{html.escape(s.explanation or "")}</td></tr>' for s in items)
                return f"<div><h3>{title}</h3><table><tr><th>id</th><th>density</th><th>max</th><th></th></tr>{rows}</table></div>"

            meta = db.meta
            body.append(f'<p class="note">{meta["n_features"]:,} features of {html.escape(str(meta["model"]))} layer {meta["layer"]}, '
                        f'{meta["n_tokens"]:,} tokens ({meta["heldout_contexts"]} of {meta["n_contexts"]} contexts held out)</p>')
            body.append(f'<div class="cols">{listing(f"{len(dense)} most dense", dense)}{listing(f"{len(sparse)} least dense (live)", sparse)}</div>')
    body.extend(family_section(run_dir, out))
    for note in notes:
        body.append(f'<p class="note">{html.escape(note)}</p>')
    index = out / "index.html"
    atomic.write_bytes(index, _page(f"Report {run_dir.name}", "\n".join(body), "style.css").encode())
    return index
