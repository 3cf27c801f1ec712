"""The web app: a FastAPI application over tilesearch.api serving one store and its page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from tilesearch.errors import TilesearchError
from tilesearch.web import routes_images, routes_search
from tilesearch.web.errors import body, error_status
from tilesearch.web.state import StoreState

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 20_000_000
"""Largest accepted query upload, in bytes."""


def create_app(store_path: str | Path, *, max_upload: int = MAX_UPLOAD,
               warm: bool = True) -> FastAPI:
    """The app serving the store at `store_path` (StoreError when it is not a store). With
    `warm`, the store's search files are read into memory in the background (`api.warm`)."""
    from tilesearch import __version__, api

    app = FastAPI(
        title="tilesearch", version=__version__,
        description="Explore a tilesearch store: map tiles of its images, searches by tile, "
                    "by examples or by an uploaded image, results as JSON, GeoJSON or CSV. "
                    "Errors answer {\"error\": kind, \"detail\": message}.")
    app.state.store = StoreState(store_path)
    if warm:
        app.state.store.warmer = api.warm(app.state.store.store())
    app.state.max_upload = max_upload
    app.include_router(routes_images.router)
    app.include_router(routes_search.router)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TilesearchError)
    async def tilesearch_error(request: Request, exc: TilesearchError) -> JSONResponse:
        status, kind = error_status(exc)
        return JSONResponse(body(kind, str(exc)), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors())
        return JSONResponse(body("invalid request", detail), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not found" if exc.status_code == 404 else "http error"
        return JSONResponse(body(kind, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(body("internal error", f"{type(exc).__name__}: {exc}"),
                            status_code=500)


STORE_ENV = "TILESEARCH_SERVE_STORE"
WARM_ENV = "TILESEARCH_SERVE_WARM"


def app_from_env() -> FastAPI:
    """The app for the store named by $TILESEARCH_SERVE_STORE (for uvicorn worker processes)."""
    return create_app(os.environ[STORE_ENV], warm=os.environ.get(WARM_ENV) != "0")


def serve(store_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          open_browser: bool = False, build_overviews: bool = False, workers: int = 1,
          warm: bool = True, **uvicorn_options: Any) -> None:
    """Run the app with uvicorn until interrupted; `build_overviews` first builds overviews
    for the store's images lacking them (`api.build_overviews`). `workers` > 1 runs that many
    server processes (searches hold Python's GIL for part of their time). `warm`: see
    `create_app` (with several workers, each warms; the page cache they fill is shared)."""
    import uvicorn

    app = create_app(store_path, warm=warm and workers == 1)
    if build_overviews:
        from tilesearch import api

        for r in api.build_overviews(store_path, echo=lambda m: print(m, flush=True)):
            if r["error"]:
                print(f"tilesearch: no overviews for {r['path']}: {r['error']}", flush=True)
    url = f"http://{host}:{port}/"
    print(f"tilesearch: serving {app.state.store.path} at {url}  (API docs: {url}docs)",
          flush=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    if workers > 1:
        os.environ[STORE_ENV] = str(app.state.store.path)
        os.environ[WARM_ENV] = "1" if warm else "0"
        uvicorn.run("tilesearch.web.app:app_from_env", factory=True, workers=workers,
                    host=host, port=port, log_level="warning", **uvicorn_options)
    else:
        uvicorn.run(app, host=host, port=port, log_level="warning", **uvicorn_options)
