"""The FastAPI application for one run: server-rendered pages (pages.py), the JSON API
(api.py), local static files, and the overview plots.

    app = create_app("runs/x")                 # model loaded on first need
    app = create_app("runs/x", model=False)    # browsing only
    uvicorn.run(app, host="127.0.0.1", port=8000)

No request parameter names a file: feature ids are integers checked against the run,
plot names come from a fixed list, and static files are served by Starlette's
StaticFiles from this package's own folder."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import MonosemanticError
from ..features import FeatureDBError
from ..features.schema import DamagedRowError
from . import api, apidocs, family_map, images, multilingual, pages
from .guard import RequestGuard
from .state import PLOTS, Limits, ModelUnavailable, RunState, ServerBusy
from .analyses import router as analyses_router

HERE = Path(__file__).parent


def create_app(run_dir: str | Path, *, lm=None, sae=None, model: bool = True, limits: Limits | None = None,
               preload: bool = False, allowed_hosts: frozenset[str] | None = None) -> FastAPI:
    """run_dir: a run with features.db (a missing or old one gives explanatory pages).
    lm/sae: already loaded objects (tests); otherwise the run's own are loaded on first
    need unless model=False. allowed_hosts: the Host names served (`serve` passes the
    loopback names when bound to loopback); None serves any."""
    state = RunState(run_dir, lm=lm, sae=sae, model=model, limits=limits)
    app = FastAPI(title="monosemantic", summary=f"Feature browser for {state.run_dir.name}",
                  description="Features, prompt inspection and steering for one run. Pages at /, JSON under /api.",
                  docs_url=None, redoc_url=None)  # /docs is apidocs.py's local page: Swagger UI would load from a CDN
    app.state.run = state
    app.add_middleware(RequestGuard, max_body_bytes=state.limits.max_body_bytes, allowed_hosts=allowed_hosts,
                       path_limits={images.IMAGE_API: state.limits.max_image_bytes})
    app.include_router(analyses_router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(apidocs.router)
    app.include_router(family_map.router)
    app.include_router(multilingual.router)
    app.include_router(images.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/plots/{name}.png", include_in_schema=False)
    def plot(name: str) -> Response:
        if name not in PLOTS:
            raise HTTPException(404, f"no plot {name!r}: plots are {', '.join(PLOTS)}")
        png = state.plot(name)
        if png is None:
            raise HTTPException(404, f"the run has no data for {name}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=300"})

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith(("/api", "/plots", "/static")) and request.url.path not in ("/docs", "/openapi.json")

    def error(request: Request, status: int, message: str, detail=None) -> Response:
        if wants_html(request):
            return pages.error_page(request, status, message)
        return JSONResponse({"detail": detail if detail is not None else message}, status_code=status)

    @app.exception_handler(FeatureDBError)
    def db_error(request: Request, e: FeatureDBError):
        missing = state.db_error is not None
        return error(request, 500 if isinstance(e, DamagedRowError) else 503 if missing else 400, str(e))

    @app.exception_handler(ModelUnavailable)
    def no_model(request: Request, e: ModelUnavailable):
        return error(request, 503, str(e))

    @app.exception_handler(ServerBusy)
    def busy(request: Request, e: ServerBusy):
        response = error(request, 503, str(e))
        response.headers["Retry-After"] = str(ServerBusy.retry_after_s)
        return response

    @app.exception_handler(MonosemanticError)
    def user_error(request: Request, e: MonosemanticError):
        return error(request, 400, str(e))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, e: StarletteHTTPException):
        return error(request, e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, e: RequestValidationError):
        errors = [{k: v for k, v in err.items() if k in ("loc", "msg", "type")} for err in e.errors()]
        message = "; ".join(f"{'.'.join(str(p) for p in err['loc'][1:]) or 'request'}: {err['msg']}" for err in errors)
        return error(request, 422, f"invalid input: {message}", detail=errors)

    if preload and model:
        state.preload()
    return app
