"""The web app: a FastAPI application over tilesearch.api serving one store and its page."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tilesearch.errors import TilesearchError
from tilesearch.web import (
    routes_audit,
    routes_images,
    routes_labels,
    routes_map,
    routes_search,
)
from tilesearch.web.errors import body, error_headers, error_status
from tilesearch.web.finding import FindCache
from tilesearch.web.gate import SearchGate
from tilesearch.web.geomap import check_basemap
from tilesearch.web.guard import Guard
from tilesearch.web.guard import allowed_hosts as allowed_hosts_of
from tilesearch.web.paths import hide_paths
from tilesearch.web.state import StoreState

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 20_000_000
"""Largest accepted query upload, in bytes."""
MAX_JSON_BODY = 1_000_000
"""Largest request body of every route but the upload, in bytes."""
FORM_OVERHEAD = 256_000
"""What an upload's body may hold beyond the file: multipart headers and the params field."""
UPLOAD_ROUTE = "/api/search/image"
SWAGGER_UI = "/static/vendor/swagger-ui"
"""Where the /docs page's Swagger UI files are served from (vendored: no CDN, works offline)."""


def create_app(store_path: str | Path, *, max_upload: int = MAX_UPLOAD, warm: bool = True,
               host: str = "127.0.0.1", allowed_hosts: Sequence[str] = (),
               expose_paths: bool = False, searches: int = 2,
               search_start_timeout: float = 10.0, search_finish_timeout: float = 30.0,
               body_timeout: float = 10.0, body_deadline: float = 120.0,
               blas_threads: int | None = 1, basemap: str | None = None) -> FastAPI:
    """The app serving the store at `store_path` (StoreError when it is not a store).

    With `warm`, the store's search files are read into memory in the background
    (`api.warm`). Requests must name `host`, a loopback name or one of `allowed_hosts` in
    their Host header (421 otherwise); cross-origin POSTs answer 403. Answers name files by
    their name only, unless `expose_paths`. At most `searches` run at once; one that cannot
    start within `search_start_timeout` s or finish within `search_finish_timeout` s answers
    503 (`gate.SearchGate`). A request body may pause `body_timeout` s at most and take
    `body_deadline` s in all (408).
    `blas_threads` limits BLAS threads process-wide (None: as they are): several threads
    calling a multi-threaded OpenBLAS at once can hang for good. `basemap`, an XYZ tile URL
    template, is offered under the geographic map (off until the user turns it on; the
    page fetches nothing beyond this server otherwise)."""
    from tilesearch import __version__, api

    basemap = check_basemap(basemap)
    limit_blas(blas_threads)
    app = FastAPI(
        title="tilesearch", version=__version__,
        description="Explore a tilesearch store: map tiles of its images, searches by tile, "
                    "by examples or by an uploaded image, results as JSON, GeoJSON or CSV; label "
                    "sets and find all (every place like the labels, counted). "
                    "Errors answer {\"error\": kind, \"detail\": message}.",
        docs_url=None, redoc_url=None)  # /docs below, from vendored files; no /redoc
    app.state.store = StoreState(store_path)
    if warm:
        app.state.store.warmer = api.warm(app.state.store.store())
    app.state.max_upload = max_upload
    app.state.expose_paths = expose_paths
    app.state.basemap = basemap
    app.state.gate = SearchGate(searches, search_start_timeout, search_finish_timeout)
    app.state.decode_slots = threading.BoundedSemaphore(searches)
    app.state.find_cache = FindCache()
    app.state.label_lock = threading.Lock()
    app.include_router(routes_images.router)
    app.include_router(routes_map.router)
    app.include_router(routes_search.router)
    app.include_router(routes_labels.router)
    app.include_router(routes_audit.router)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def body_limit(path: str) -> int:
        return max_upload + FORM_OVERHEAD if path == UPLOAD_ROUTE else MAX_JSON_BODY

    app.add_middleware(Guard, hosts=allowed_hosts_of(host, allowed_hosts),
                       body_limit=body_limit, body_idle=body_timeout, body_total=body_deadline)

    _add_pages(app)
    return app


def _add_pages(app: FastAPI) -> None:
    """The page itself, and the API's own page (Swagger UI from vendored files)."""
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API",
            swagger_js_url=f"{root}{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_UI}/favicon-32x32.png",
            # No validator badge: it would fetch an image from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None})


def limit_blas(threads: int | None) -> None:
    """Limit the BLAS libraries loaded (numpy's, FAISS's) to `threads` threads each."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    with contextlib.suppress(ImportError):  # load FAISS's own BLAS now, so the limit reaches it
        import faiss  # noqa: F401

    threadpool_limits(threads, user_api="blas")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TilesearchError)
    async def tilesearch_error(request: Request, exc: TilesearchError) -> JSONResponse:
        status, kind = error_status(exc)
        return JSONResponse(body(kind, scrub(request, str(exc))), status_code=status,
                            headers=error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors())
        return JSONResponse(body("invalid request", detail), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = HTTP_KINDS.get(exc.status_code, "http error")
        return JSONResponse(body(kind, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(body("internal error", scrub(request, f"{type(exc).__name__}: "
                                                                  f"{exc}")), status_code=500)


HTTP_KINDS = {404: "not found", 408: "request timeout", 413: "request too large"}


def scrub(request: Request, detail: str) -> str:
    """`detail` with absolute paths cut to their last part, unless the app exposes paths."""
    return detail if request.app.state.expose_paths else hide_paths(detail)
