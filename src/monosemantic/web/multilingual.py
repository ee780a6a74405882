"""The multilingual page: what `monosemantic multilingual RUN` found (its result.json),
the fractions with their threshold and baseline, the figures, and the top features
with the same passage side by side in each language. Read-only: the analysis runs from
the CLI (minutes of model time), never from a request."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ..analysis.multilingual_run import OUT, load_result
from ..token_text import segments_of
from .api import state_of
from .pages import render

router = APIRouter(include_in_schema=False)
FIGURES = ("scores", "by_size")


def passage_spans(shown: dict) -> list[dict]:
    """One language's passage as display spans (characters split across tokens joined)."""
    tokens, acts = shown["tokens"], shown["acts"]
    peak = max(range(len(acts)), key=acts.__getitem__) if acts else -1
    return [{"text": s.text, "act": max(acts[s.start:s.stop]), "peak": s.start <= peak < s.stop,
             "title": f"activation {max(acts[s.start:s.stop]):.3f}"} for s in segments_of(tokens)]


@router.get("/multilingual", response_class=HTMLResponse)
def multilingual_page(request: Request):
    state = state_of(request)
    result = load_result(state.run_dir)
    return render(request, "multilingual.html", result=result, passage_spans=passage_spans,
                  figures=[f for f in FIGURES if (state.run_dir / OUT / f"{f}.png").is_file()])


@router.get("/multilingual/{name}.png")
def multilingual_figure(request: Request, name: str) -> Response:
    if name not in FIGURES:   # a fixed list: no request names a file
        raise HTTPException(404, f"no figure {name!r}: figures are {', '.join(FIGURES)}")
    path = state_of(request).run_dir / OUT / f"{name}.png"
    if not path.is_file():
        raise HTTPException(404, f"no {name} figure: run `monosemantic multilingual RUN` first")
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "max-age=60"})
