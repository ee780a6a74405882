"""The JSON API under /api (OpenAPI at /docs). Every input is bounded: pydantic
checks types and ranges (422), feature ids are checked against the run (404 for a
page, 422 inside a request body), and user errors from the library become 400s."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..steering.interventions import Intervention
from .compute import SteeredDecoding, inspect_prompt
from .state import Limits, RunState, scalar_items

LIMITS = Limits()
SORTS = Literal["id", "density", "max_act", "mean_act", "count", "score"]

router = APIRouter(prefix="/api", tags=["api"])


def state_of(request: Request) -> RunState:
    return request.app.state.run


def check_feature_id(state: RunState, fid: int, status: int = 404) -> int:
    state.db()  # a missing or old database says so first
    n = state.n_features
    if not 0 <= fid < n:
        raise HTTPException(status, f"feature {fid} does not exist: this run has features 0..{n - 1}")
    return fid


def explanations_for(state: RunState, ids: list[int]) -> dict[int, str]:
    """The first explanation of each feature (for labels next to ids)."""
    return state.db().explanations_of(ids)


# --- run -----------------------------------------------------------------------------------
@router.get("/run", summary="The run: database metadata, eval results, model status")
def run_info(request: Request) -> dict:
    state = state_of(request)
    return {
        "run": state.run_dir.name,
        "features_db": None if state.db_error else {k: v for k, v in state.meta.items() if k != "hist_log10_edges"},
        "features_db_error": state.db_error,
        "eval": dict(scalar_items(state.eval_results())),
        "n_metrics_records": len(state.metrics()),
        "model": {"enabled": state.model_enabled, "loaded": state.model_loaded},
        "limits": asdict(state.limits),
    }


# --- features ----------------------------------------------------------------------------
class ListParams(BaseModel):
    sort: SORTS = "density"
    descending: bool = True
    min_density: float | None = Field(None, ge=0, le=1)
    max_density: float | None = Field(None, ge=0, le=1)
    min_max_act: float | None = None
    min_score: float | None = None
    scorer: str | None = Field(None, max_length=100)  # which score the score column, sort and filter use
    explanation: str | None = Field(None, max_length=200)
    live_only: bool = False
    limit: int = Field(50, ge=1, le=LIMITS.page_size_max)
    offset: int = Field(0, ge=0, le=10_000_000)


def list_features(state: RunState, p: ListParams) -> dict:
    """One page, plus whether another follows (one extra row instead of a COUNT)."""
    rows = state.db().list(sort=p.sort, descending=p.descending, min_density=p.min_density, max_density=p.max_density,
                           min_max_act=p.min_max_act, min_score=p.min_score, explanation=p.explanation or None,
                           live_only=p.live_only, scorer=p.scorer or None, limit=p.limit + 1, offset=p.offset)
    return {"items": [asdict(r) for r in rows[: p.limit]], "offset": p.offset, "limit": p.limit, "has_more": len(rows) > p.limit}


@router.get("/features", summary="Features, sorted, filtered and paginated")
def features(
    request: Request,
    sort: SORTS = "density",
    descending: bool = True,
    min_density: float | None = Query(None, ge=0, le=1),
    max_density: float | None = Query(None, ge=0, le=1),
    min_max_act: float | None = None,
    min_score: float | None = None,
    scorer: str | None = Query(None, max_length=100, description="score shown and sorted by, e.g. n2g_f1 or embedding_auroc"),
    explanation: str | None = Query(None, max_length=200),
    live_only: bool = False,
    limit: int = Query(50, ge=1, le=LIMITS.page_size_max),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict:
    p = ListParams(sort=sort, descending=descending, min_density=min_density, max_density=max_density, min_max_act=min_max_act,
                   min_score=min_score, scorer=scorer, explanation=explanation, live_only=live_only, limit=limit, offset=offset)
    return list_features(state_of(request), p)


@router.get("/features/{feature_id}", summary="One feature: statistics, examples, logit effects, neighbours")
def feature(request: Request, feature_id: int = Path(..., ge=0, le=2**31 - 1)) -> dict:
    state = state_of(request)
    check_feature_id(state, feature_id)
    return state.db().export(feature_id) | {"run": state.run_dir.name}


# --- search ----------------------------------------------------------------------------------
@router.get("/search", summary="Features by explanation text or by the tokens they fire on")
def search(request: Request, q: str = Query(..., min_length=1, max_length=200),
           by: Literal["explanation", "tokens"] = "tokens", limit: int = Query(20, ge=1, le=LIMITS.page_size_max)) -> dict:
    state = state_of(request)
    if by == "explanation":
        rows = state.db().list(explanation=q, sort="max_act", limit=limit)
        return {"by": by, "q": q, "items": [asdict(r) | {"token": None} for r in rows]}
    hits = token_search(state, q, limit)
    labels = explanations_for(state, [h.feature_id for h in hits])
    return {"by": by, "q": q, "items": [asdict(h) | {"explanation": labels.get(h.feature_id)} for h in hits]}


def token_search(state: RunState, q: str, limit: int):
    """With the model loaded its tokenizer splits phrases; without it, one vocabulary
    token is looked up (no model load for a search)."""
    if not q.strip():
        raise HTTPException(422, "search text is blank: type a word or a phrase")
    return state.db().search(q, limit=limit)


# --- model: inspector and steering -----------------------------------------------------------
class InspectRequest(BaseModel):
    prompt: str = Field(..., min_length=1, max_length=LIMITS.max_prompt_chars)
    k: int = Field(20, ge=1, le=100)
    per_token: int = Field(10, ge=1, le=50)


@router.post("/inspect", summary="Run the model and SAE on a prompt: top features overall and per token")
def inspect(request: Request, body: InspectRequest) -> dict:
    state = state_of(request)
    result = inspect_prompt(state, body.prompt, body.k, body.per_token)
    labels = explanations_for(state, [f for f, _, _ in result.top] + [f for t in result.tokens for f, _ in t.features])
    return {
        "tokens": [{"position": t.position, "token": t.token,
                    "features": [{"id": f, "activation": a, "explanation": labels.get(f)} for f, a in t.features]}
                   for t in result.tokens],
        "top": [{"id": f, "activation": a, "position": p, "explanation": labels.get(f)} for f, a, p in result.top],
    }


class InterventionIn(BaseModel):
    feature: int = Field(..., ge=0, le=2**31 - 1)
    mode: Literal["clamp", "add", "multiply"] = "clamp"
    value: float = Field(..., ge=-LIMITS.max_abs_value, le=LIMITS.max_abs_value)
    unit: Literal["abs", "max"] = "abs"


class SteerRequest(BaseModel):
    prompt: str = Field(..., min_length=1, max_length=LIMITS.max_prompt_chars)
    interventions: list[InterventionIn] = Field(..., min_length=1, max_length=LIMITS.max_interventions)
    max_new_tokens: int = Field(40, ge=1, le=LIMITS.max_new_tokens)
    temperature: float = Field(0.7, ge=0, le=5)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    chat: bool = True


def _decoding(state: RunState, body: SteerRequest):
    for iv in body.interventions:
        check_feature_id(state, iv.feature, status=422)
    ivs = [Intervention(iv.feature, iv.mode, float(iv.value), iv.unit) for iv in body.interventions]
    return SteeredDecoding(state, body.prompt, ivs, body.max_new_tokens, body.temperature, body.seed, body.chat)


@router.post("/steer", summary="Steered and unsteered completions (same seed), returned when both are done")
def steer(request: Request, body: SteerRequest) -> dict:
    decoding = _decoding(state_of(request), body)
    for _ in decoding:
        pass
    return {"prompt": decoding.prompt_text, "interventions": decoding.descriptions, **decoding.completions}


@router.post("/steer/stream", summary="The same, streamed as Server-Sent Events while both decode",
             response_class=StreamingResponse)
async def steer_stream(request: Request, body: SteerRequest) -> StreamingResponse:
    decoding = await run_in_threadpool(_decoding, state_of(request), body)  # 4xx before the stream starts

    def events():
        yield _sse({"type": "start", "prompt": decoding.prompt_text, "interventions": decoding.descriptions})
        try:
            for ev in decoding:
                yield _sse({"type": "replace" if ev.replace else "token", "row": ev.row, "text": ev.text})
        except Exception as e:  # mid-stream: the status line is sent already
            yield _sse({"type": "error", "message": str(e)})
            return
        yield _sse({"type": "done", **decoding.completions})

    return StreamingResponse(iterate_in_threadpool(events()), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data)}\n\n"
