"""Images in the web app (vision-language runs, docs/multimodal.md): the image
inspector page, its upload endpoint, and the image examples of the feature pages.

The upload is the request body itself (the image's bytes; no multipart parser, no
file name from the client), at most `Limits.max_image_bytes` (the RequestGuard counts
it), decoded from memory by models/images.py after its size checks: nothing of it is
written to disk. Stored image examples are read from features.db by integer id."""

from __future__ import annotations

import base64

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from ..features.image_examples import image_examples_of, image_png
from ..features.image_prompt import frame_png, image_features
from ..models.images import decode_image
from ..models.loading import is_vision_model
from ..models.vision import VisionLanguageModel, require_vision
from .api import LIMITS, check_feature_id, explanations_for, state_of
from .compute import check_prompt_tokens
from .pages import render, templates

IMAGE_API = "/api/image"
router = APIRouter()
pages = APIRouter(include_in_schema=False)


def has_images(request: Request) -> bool:
    """The Image inspector link is shown for a vision-language run only (the model
    already loaded, or its config), never to a text-only run where every upload fails."""
    state = state_of(request)
    if state.lm is not None:
        return isinstance(state.lm, VisionLanguageModel)
    return is_vision_model(state.run.model_spec)


templates.env.globals["image_inspector_exists"] = has_images


def _png_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _inspect_image(state, data: bytes, prompt: str, feature: int | None, k: int) -> dict:
    state.ensure_model()
    lm = require_vision(state.lm)
    image = decode_image(data, "the upload", max_bytes=state.limits.max_image_bytes)
    if prompt:
        check_prompt_tokens(state, prompt)
    with state.model_lock:
        result = image_features(lm, state.sae, state.layer, image, prompt)
    top_image, top_text = result.top("image", k), result.top("text", k)
    if feature is None:
        feature = top_image[0][0] if top_image else 0
    labels = explanations_for(state, [f for f, _, _ in top_image + top_text] + [feature])
    views = []
    for view, heat in zip(result.inputs.views, result.heat_maps(feature)):
        frame = view.frame if view.frame is not None else np.asarray(image)
        views.append({**heat, "png": _png_url(frame_png(frame))})

    def patch(pos: int) -> dict | None:
        where = result.patch_of(pos)
        return None if where is None else {"view": where[0], "row": where[1], "col": where[2]}

    return {
        "image": {"width": image.width, "height": image.height, "tokens": int(result.image_mask.sum())},
        "feature": {"id": feature, "explanation": labels.get(feature),
                    "max": max((max(map(max, v["values"])) for v in views), default=0.0)},
        "views": views,
        "top_image": [{"id": f, "activation": a, "patch": patch(p), "explanation": labels.get(f)} for f, a, p in top_image],
        "top_text": [{"id": f, "activation": a, "token": result.tokens[p], "explanation": labels.get(f)}
                     for f, a, p in top_text],
    }


@router.post(IMAGE_API, summary="Run a vision-language model and the SAE on an uploaded image (the request body: PNG, "
             "JPEG, GIF, BMP or WebP bytes) and an optional prompt: top features on the image tokens and on the text, "
             "and one feature's heat map over the image patches (the top image feature unless `feature` is given)")
async def inspect_image(request: Request, prompt: str = Query("", max_length=LIMITS.max_prompt_chars),
                        feature: int | None = Query(None, ge=0, le=2**31 - 1), k: int = Query(10, ge=1, le=50)) -> dict:
    state = state_of(request)
    if feature is not None:
        check_feature_id(state, feature, status=422)
    data = await request.body()
    if not data:
        raise HTTPException(422, "no image in the request: send the image file's bytes as the body")
    with state.model_slot():
        return await run_in_threadpool(_inspect_image, state, data, prompt, feature, k)


@router.get("/api/features/{feature_id}/images", summary="A feature's top image examples (from `image-examples`): "
            "image id, file name, max activation, peak patch and heat map")
def feature_images(request: Request, feature_id: int) -> list[dict]:
    state = state_of(request)
    check_feature_id(state, feature_id)
    return [{"image": e.image_id, "name": e.name, "activation": e.max_act, "peak": {"row": e.peak_row, "col": e.peak_col},
             "grid": e.grid, "src": f"/images/{e.image_id}.png"} for e in image_examples_of(state.db(), feature_id)]


@pages.get("/images/{image_id}.png")
def stored_image(request: Request, image_id: int) -> Response:
    png = image_png(state_of(request).db(), image_id)
    if png is None:
        raise HTTPException(404, f"no stored image {image_id}: add images with `monosemantic image-examples RUN FOLDER`")
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=300"})


@pages.get("/image", response_class=HTMLResponse)
def image_page(request: Request, feature: int | None = Query(None, ge=0, le=2**31 - 1)):
    return render(request, "image.html", feature=feature)


router.include_router(pages)
