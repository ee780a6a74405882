"""Server-rendered pages (Jinja2 templates in templates/). The pages that need the
model (inspector, playground) render a form; static/app.js talks to the JSON API."""

from __future__ import annotations

import math
import random
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from ..steering.interventions import DEFAULT_ADD
from ..token_text import segments_of
from . import readable
from .api import LIMITS, ListParams, check_feature_id, explanations_for, list_features, run_search, state_of
from .state import PLOTS

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def token_text(token: str) -> str:
    """Whitespace made visible; the template escapes the rest."""
    return token.replace("\n", "↵").replace("\t", "⇥") if token else "∅"


def example_spans(ex) -> list[dict]:
    """An example's tokens as display spans: tokens that split a character are one
    span (token_text.segments_of), coloured by their strongest activation."""
    peak = ex.position - ex.start
    out = []
    for seg in segments_of(ex.tokens):
        acts = ex.acts[seg.start : seg.stop]
        title = "activation " + " / ".join(f"{a:.3f}" for a in acts)
        out.append({"text": seg.text, "act": max(acts), "peak": seg.start <= peak < seg.stop, "title": title})
    return out


def act_alpha(act: float, max_act: float) -> str:
    if not max_act or max_act <= 0 or not math.isfinite(act) or act <= 0:
        return "0"
    return f"{min(act / max_act, 1.0) * 0.85 + 0.05:.2f}"


def histogram_bars(counts: list[int], edges: list[float]) -> list[dict]:
    """Bars for the inline SVG histogram, heights in [0, 1] on a log scale, over the
    bins from the feature's smallest to its largest activation (one empty bin either
    side): each feature's axis fits its own range."""
    nonzero = [i for i, c in enumerate(counts) if c > 0]
    if not nonzero:
        return []
    first, last = max(nonzero[0] - 1, 0), min(nonzero[-1] + 1, len(counts) - 1)
    scale = math.log1p(max(counts))
    return [{"lo": edges[i] if i < len(edges) else None, "hi": edges[i + 1] if i + 1 < len(edges) else None,
             "count": counts[i], "h": math.log1p(counts[i]) / scale} for i in range(first, last + 1)]


def activation(log10: float | None) -> str:
    """A histogram edge (log10 of an activation) as the activation itself."""
    return "" if log10 is None else f"{10 ** log10:.3g}"


templates.env.filters["tok"] = token_text
templates.env.filters["activation"] = activation
templates.env.globals.update(act_alpha=act_alpha, example_spans=example_spans, zip=zip, limits=LIMITS)


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    state = state_of(request)
    state.refresh()  # a rebuilt features.db shows on the next page
    context.setdefault("db_error", state.db_error)
    context.setdefault("n_neurons", state.n_neurons)
    return templates.TemplateResponse(request, name, {"run_name": state.run_dir.name, "meta": state.meta,
                                                      "model_enabled": state.model_enabled, **context}, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


@router.get("/", response_class=HTMLResponse)
def overview(request: Request):
    state = state_of(request)
    ev = state.eval_results()
    plots = [name for name in PLOTS if state.plot(name) is not None]
    return render(request, "overview.html", eval_items=readable.rows(ev, readable.EVAL), plots=plots,
                  meta_items=readable.rows(state.meta, readable.META))


def list_params(
    sort: str = "density", descending: bool = True, min_density: str = "", max_density: str = "", min_max_act: str = "",
    min_score: str = "", scorer: str = Query("", max_length=100), explanation: str = Query("", max_length=200), live_only: bool = False,
    limit: int = Query(50, ge=1, le=LIMITS.page_size_max), offset: int = Query(0, ge=0, le=10_000_000),
    kind: str = Query("feature", pattern="^(feature|neuron)$"), seed: int = Query(0, ge=0, le=2**31 - 1),
) -> ListParams:
    """The list form's fields (blank = no filter), checked by the API's model."""
    def num(name: str, v: str):
        try:
            return float(v) if v.strip() else None
        except ValueError:
            raise HTTPException(422, f"invalid filter: {name} must be a number, got {v!r}") from None

    try:
        return ListParams(sort=sort, descending=descending, min_density=num("min_density", min_density),
                          max_density=num("max_density", max_density), min_max_act=num("min_max_act", min_max_act),
                          min_score=num("min_score", min_score), scorer=scorer or None, explanation=explanation.strip() or None,
                          live_only=live_only, limit=limit, offset=offset, kind=kind, seed=seed)
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise HTTPException(422, f"invalid filter: {msg}") from None


@router.get("/features", response_class=HTMLResponse)
def feature_list(request: Request, p: ListParams = Depends(list_params)):
    state = state_of(request)
    page = list_features(state, p)
    form = {k: ("" if v is None else v) for k, v in p.model_dump().items()}

    def link(offset: int) -> str:
        q = {k: v for k, v in p.model_dump().items() if v not in (None, "")} | {"offset": offset}
        return "/features?" + urlencode({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in q.items()})

    prev_link = link(max(p.offset - p.limit, 0)) if p.offset > 0 else None
    next_link = link(p.offset + p.limit) if page["has_more"] else None
    return render(request, "features.html", items=page["items"], form=form, prev_link=prev_link, next_link=next_link,
                  sorts=["density", "max_act", "mean_act", "count", "score", "id", "random"], kind=p.kind,
                  random_seed=random.randrange(1, 2**31 - 1), scorer=p.scorer or state.db().list_scorer(p.kind),
                  scorers=state.db().scorer_names(p.kind))


@router.get("/features/{feature_id}", response_class=HTMLResponse)
def feature_page(request: Request, feature_id: int, kind: str = Query("feature", pattern="^(feature|neuron)$")):
    state = state_of(request)
    check_feature_id(state, feature_id, kind=kind)
    f = state.db().get(feature_id, kind)
    labels = explanations_for(state, [i for i, _ in f.neighbours], kind)
    return render(request, "feature.html", f=f, labels=labels, n_items=state.n_features if kind == "feature" else state.n_neurons,
                  hist=histogram_bars(f.histogram, f.hist_log10_edges), kind=kind)


@router.get("/inspect", response_class=HTMLResponse)
def inspector(request: Request, prompt: str = Query("", max_length=LIMITS.max_prompt_chars),
              feature: int | None = Query(None, ge=0, le=2**31 - 1)):
    """prompt and feature in the URL: the page runs the prompt and selects the feature."""
    return render(request, "inspect.html", prompt=prompt, feature=feature)


@router.get("/concepts", response_class=HTMLResponse)
def concepts_page(request: Request, concept: str = Query("", max_length=64)):
    from ..steering.concepts import concept_names, load_concept

    sets = [(n, load_concept(n).description) for n in concept_names()]
    return render(request, "concepts.html", sets=sets, concept=concept)


@router.get("/steer", response_class=HTMLResponse)
def playground(request: Request, feature: int | None = Query(None, ge=0, le=2**31 - 1)):
    state = state_of(request)
    if feature is not None:
        check_feature_id(state, feature)
    label = explanations_for(state, [feature]).get(feature) if feature is not None and state.db_error is None else None
    return render(request, "steer.html", feature=feature, label=label, n_features=state.n_features, default_add=DEFAULT_ADD)


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = Query("", max_length=200), by: str = Query("all", pattern="^(all|tokens|explanation)$"),
           kind: str = Query("feature", pattern="^(feature|neuron)$")):
    result = run_search(state_of(request), q, by, 50, kind) if q.strip() else None
    return render(request, "search.html", q=q, by=by, kind=kind, result=result)
