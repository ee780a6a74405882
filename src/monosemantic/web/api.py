"""The JSON API under /api (OpenAPI at /docs). Every input is bounded: pydantic
checks types and ranges (422), feature ids are checked against the run (404 for a
page, 422 inside a request body), and user errors from the library become 400s.
Model requests are admitted into a bounded queue (503 + Retry-After when full), and a
steering request stops when its client goes away."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..steering.interventions import Intervention
from .compute import SteeredDecoding, concept_features, inspect_prompt
from .state import Limits, RunState, scalar_items

LIMITS = Limits()
SORTS = Literal["id", "density", "max_act", "mean_act", "count", "score", "random"]
KINDS = Literal["feature", "neuron"]

router = APIRouter(prefix="/api", tags=["api"])


def state_of(request: Request) -> RunState:
    return request.app.state.run


def check_feature_id(state: RunState, fid: int, status: int = 404, kind: str = "feature") -> int:
    state.db()  # a missing or old database says so first
    n = state.n_features if kind == "feature" else state.n_neurons
    if not 0 <= fid < n:
        if kind == "neuron" and n == 0:
            raise HTTPException(status, "this features.db has no neurons: build them with `monosemantic features RUN --neurons --force`")
        raise HTTPException(status, f"{kind} {fid} does not exist: this run has {kind}s 0..{n - 1}")
    return fid


def explanations_for(state: RunState, ids: list[int], kind: str = "feature") -> dict[int, str]:
    """The first explanation of each feature (for labels next to ids)."""
    return state.db().explanations_of(ids, kind)


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
        "model_requests": state.model_requests, "stopped_early": dict(state.stopped_early),
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
    kind: KINDS = "feature"
    seed: int = Field(0, ge=0, le=2**31 - 1)  # sort=random: which sample


def list_features(state: RunState, p: ListParams) -> dict:
    """One page, plus whether another follows (one extra row instead of a COUNT)."""
    if p.kind == "neuron" and state.n_neurons == 0:
        check_feature_id(state, 0, status=400, kind="neuron")
    rows = state.db().list(kind=p.kind, sort=p.sort, descending=p.descending, min_density=p.min_density, max_density=p.max_density,
                           min_max_act=p.min_max_act, min_score=p.min_score, explanation=p.explanation or None,
                           live_only=p.live_only, scorer=p.scorer or None, limit=p.limit + 1, offset=p.offset, seed=p.seed)
    return {"items": [asdict(r) for r in rows[: p.limit]], "offset": p.offset, "limit": p.limit, "has_more": len(rows) > p.limit,
            "scorer": p.scorer or state.db().list_scorer(p.kind)}  # whose score the items carry


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
    kind: KINDS = "feature",
    seed: int = Query(0, ge=0, le=2**31 - 1),
) -> dict:
    p = ListParams(sort=sort, descending=descending, min_density=min_density, max_density=max_density, min_max_act=min_max_act,
                   min_score=min_score, scorer=scorer, explanation=explanation, live_only=live_only, limit=limit, offset=offset,
                   kind=kind, seed=seed)
    return list_features(state_of(request), p)


@router.get("/features/{feature_id}", summary="One feature: statistics, examples, logit effects, neighbours")
def feature(request: Request, feature_id: int = Path(..., ge=0, le=2**31 - 1), kind: KINDS = "feature") -> dict:
    state = state_of(request)
    check_feature_id(state, feature_id, kind=kind)
    return state.db().export(feature_id, kind) | {"run": state.run_dir.name}


# --- search ----------------------------------------------------------------------------------
@router.get("/search", summary="Features by the tokens they fire on (a word in any spacing or case, split words too), "
            "by the tokens their decoder promotes (`logit_items`) and by explanation text; `notes` say how the query was "
            "read and why a list is empty")
def search(request: Request, q: str = Query(..., min_length=1, max_length=200), by: Literal["all", "tokens", "explanation"] = "tokens",
           limit: int = Query(20, ge=1, le=LIMITS.page_size_max), kind: KINDS = "feature") -> dict:
    result = run_search(state_of(request), q, by, limit, kind)
    return {"by": by, "q": q, "items": [asdict(h) | {"id": h.feature_id} for h in result.by_token] if by != "explanation"
            else [asdict(r) for r in result.by_explanation],
            "explanation_items": [asdict(r) for r in result.by_explanation],
            "logit_items": [asdict(h) | {"id": h.feature_id} for h in result.by_logit], "logit_how": result.logit_how,
            "notes": result.notes}


def run_search(state: RunState, q: str, by: str, limit: int, kind: str = "feature"):
    from ..features.search import search_features

    if not q.strip():
        raise HTTPException(422, "search text is blank: type a word, a phrase or words of an explanation")
    rank_logit = None
    if state.model_loaded:  # the model is not loaded for a search, but used once it is there
        from ..steering.concepts import rank_logit_effect

        def rank_logit(ids, top):
            with state.model_lock:
                return rank_logit_effect(state.lm, state.sae, ids, top=top)

    return search_features(state.db(), q, state.tokenizer(), by=by, kind=kind, limit=limit, rank_logit=rank_logit)


# --- model: inspector and steering -----------------------------------------------------------
class InspectRequest(BaseModel):
    prompt: str = Field(..., min_length=1, max_length=LIMITS.max_prompt_chars)
    k: int = Field(20, ge=1, le=100)
    per_token: int = Field(10, ge=1, le=50)
    feature: int | None = Field(None, ge=0, le=2**31 - 1, description="also return this feature's activation on every token")


@router.post("/inspect", summary="Run the model and SAE on a prompt: top features overall and per token")
def inspect(request: Request, body: InspectRequest) -> dict:
    state = state_of(request)
    if body.feature is not None:
        check_feature_id(state, body.feature, status=422)
    with state.model_slot():
        result = inspect_prompt(state, body.prompt, body.k, body.per_token, body.feature)
    labels = explanations_for(state, [f for f, _, _ in result.top] + [f for t in result.tokens for f, _ in t.features]
                              + ([body.feature] if body.feature is not None else []))
    selected = None
    if body.feature is not None:
        acts = result.selected
        selected = {"id": body.feature, "explanation": labels.get(body.feature), "acts": acts, "max": max(acts, default=0.0),
                    "max_act": float(state.max_acts[body.feature]) if state.max_acts is not None else None}
    return {"feature": selected,
        "tokens": [{"position": t.position, "token": t.token,
                    "features": [{"id": f, "activation": a, "explanation": labels.get(f)} for f, a in t.features]}
                   for t in result.tokens],
        "top": [{"id": f, "activation": a, "position": p, "explanation": labels.get(f)} for f, a, p in result.top],
    }


class ConceptRequest(BaseModel):
    concept: str | None = Field(None, max_length=64, description="a shipped concept set (GET /api/concepts)")
    positive: list[str] = Field([], max_length=32, description="texts with the concept (instead of a shipped set)")
    negative: list[str] = Field([], max_length=32, description="texts without it")
    top: int = Field(20, ge=1, le=100)


@router.get("/concepts", summary="The shipped concept sets (name, description, example texts)")
def concepts() -> list[dict]:
    from ..steering.concepts import concept_names, load_concept

    return [{"name": n, "description": (c := load_concept(n)).description, "positive": c.positive[:3]} for n in concept_names()]


@router.post("/concept", summary="Features behind a concept: a shipped set (contrastive, re-ranked by logit effect on its "
             "tokens, as `monosemantic concept --concept`) or your positive and negative texts (contrastive)")
def concept(request: Request, body: ConceptRequest) -> dict:
    state = state_of(request)
    how, ranked = concept_features(state, body.concept, body.positive, body.negative, body.top)
    labels = explanations_for(state, [r.feature for r in ranked])
    if body.concept:
        from ..steering.concepts import load_concept

        example = load_concept(body.concept).positive[0]
    else:
        example = next(t for t in body.positive if t.strip())
    return {"how": how, "example": example, "items": [{"id": r.feature, "score": r.score, "detail": r.detail, "explanation": labels.get(r.feature),
                                   "max_act": float(state.max_acts[r.feature]) if state.max_acts is not None else None}
                                  for r in ranked]}


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
async def steer(request: Request, body: SteerRequest) -> dict:
    state = state_of(request)
    with state.model_slot():
        decoding = await run_in_threadpool(_decoding, state, body)
        task = asyncio.ensure_future(run_in_threadpool(decoding.run))
        while not task.done():  # a client that hangs up stops the decoding at the next token
            await asyncio.wait({task}, timeout=0.25)
            if not task.done() and await request.is_disconnected():
                decoding.cancel()
        await task
    return {"prompt": decoding.prompt_text, "interventions": decoding.descriptions, "stopped": decoding.stopped,
            **decoding.completions}


@router.post("/steer/stream", summary="The same, streamed as Server-Sent Events while both decode",
             response_class=StreamingResponse)
async def steer_stream(request: Request, body: SteerRequest) -> StreamingResponse:
    state = state_of(request)
    state.admit()
    try:
        decoding = await run_in_threadpool(_decoding, state, body)  # 4xx before the stream starts
    except BaseException:
        state.release()
        raise

    def events():
        yield _sse({"type": "start", "prompt": decoding.prompt_text, "interventions": decoding.descriptions})
        try:
            for ev in decoding:
                yield _sse({"type": "replace" if ev.replace else "token", "row": ev.row, "text": ev.text})
        except Exception as e:  # mid-stream: the status line is sent already
            yield _sse({"type": "error", "message": str(e)})
            return
        yield _sse({"type": "done", "stopped": decoding.stopped, **decoding.completions})

    async def stream():
        # Starlette cancels this generator when the client disconnects: the decoding
        # thread stops before its next forward and the queue slot is freed.
        try:
            async for chunk in iterate_in_threadpool(events()):
                yield chunk
        finally:
            decoding.cancel()
            state.release()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data)}\n\n"
