"""Running the app with uvicorn (`tilesearch serve`), with timeouts for slow or half-sent
requests and a loud warning when it listens beyond this machine."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h11
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from tilesearch.web.app import create_app
from tilesearch.web.guard import is_loopback

STORE_ENV = "TILESEARCH_SERVE_STORE"
WARM_ENV = "TILESEARCH_SERVE_WARM"
OPTIONS_ENV = "TILESEARCH_SERVE_OPTIONS"
HEADER_TIMEOUT = 10.0
"""Seconds a client may take to send a request's headers."""
UVICORN_OPTIONS: dict[str, Any] = {
    "timeout_keep_alive": 5,  # an idle connection is closed after 5 s
    "limit_concurrency": 64,  # connections and requests at once; beyond, 503 at once
    "h11_max_incomplete_event_size": 16_384,  # request headers of 16 KB at most
}


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request headers take longer than
    `header_timeout` s (slowloris: uvicorn times out idle connections only between requests),
    or whose request body is still arriving once the answer has been sent."""

    header_timeout = HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()  # answered before the body came: do not wait for the rest

    def _watch_headers(self) -> None:
        waiting = self.conn.their_state is h11.IDLE  # no complete request head yet
        if waiting and self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)
        elif not waiting:
            self._stop_timer()

    def _stop_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def app_from_env() -> FastAPI:
    """The app for the store named by $TILESEARCH_SERVE_STORE (for uvicorn worker processes)."""
    options = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    return create_app(os.environ[STORE_ENV], warm=os.environ.get(WARM_ENV) != "0", **options)


def warn_if_exposed(host: str) -> None:
    """A loud warning on stderr when `host` lets other machines reach the server."""
    if not is_loopback(host):
        print(f"tilesearch: WARNING: listening on {host}, so other machines can reach this "
              "server: anyone who can connect can search the store and see its imagery "
              "(there is no login). Use --host 127.0.0.1 to serve this machine only.",
              file=sys.stderr, flush=True)


def serve(store_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          open_browser: bool = False, build_overviews: bool = False, workers: int = 1,
          warm: bool = True, expose_paths: bool = False, allowed_hosts: Sequence[str] = (),
          basemap: str | None = None, **uvicorn_options: Any) -> None:
    """Run the app with uvicorn until interrupted; `build_overviews` first builds overviews
    for the store's images lacking them (`api.build_overviews`). `workers` > 1 runs that many
    server processes (searches hold Python's GIL for part of their time). `warm`,
    `expose_paths`, `allowed_hosts`, `basemap`: see `create_app` (with several workers, each
    warms; the page cache they fill is shared)."""
    import uvicorn

    warn_if_exposed(host)
    options: dict[str, Any] = {"host": host, "allowed_hosts": list(allowed_hosts),
                               "expose_paths": expose_paths, "basemap": basemap}
    app = create_app(store_path, warm=warm and workers == 1, **options)
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
    run_options = {"host": host, "port": port, "log_level": "warning",
                   "http": GuardedH11Protocol, **UVICORN_OPTIONS, **uvicorn_options}
    if workers > 1:
        os.environ[STORE_ENV] = str(app.state.store.path)
        os.environ[WARM_ENV] = "1" if warm else "0"
        os.environ[OPTIONS_ENV] = json.dumps(options)
        uvicorn.run("tilesearch.web.server:app_from_env", factory=True, workers=workers,
                    **run_options)
    else:
        uvicorn.run(app, **run_options)
