"""The local web app (`tilesearch serve`): one map of the georeferenced images (and a pixel
view of each image), click to search.

Needs the `web` extra (FastAPI, uvicorn, python-multipart, rio-tiler); imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tilesearch.errors import MissingDependencyError

if TYPE_CHECKING:
    from fastapi import FastAPI


def _check() -> None:
    for module in ("fastapi", "uvicorn", "python_multipart", "threadpoolctl", "rio_tiler"):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingDependencyError(module.replace("_", "-"), "web",
                                         "tilesearch serve") from exc


def create_app(store_path: str | Path, **options: Any) -> FastAPI:
    """The FastAPI app serving the store at `store_path`."""
    _check()
    from tilesearch.web.app import create_app as make

    return make(store_path, **options)


def serve(store_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          open_browser: bool = False, build_overviews: bool = False, workers: int = 1,
          warm: bool = True, expose_paths: bool = False,
          allowed_hosts: Sequence[str] = (), basemap: str | None = None) -> None:
    """Serve the store at http://host:port/ until interrupted (after building overviews for
    its images lacking them, with `build_overviews`), in `workers` processes; with `warm`,
    its search files are read into memory in the background (`tilesearch.api.warm`).
    Requests must name `host`, a loopback name or one of `allowed_hosts`; answers name files
    without their folders unless `expose_paths`; `basemap`, an XYZ tile URL template, is
    offered under the geographic map (see `create_app`)."""
    _check()
    from tilesearch.web.server import serve as run

    run(store_path, host=host, port=port, open_browser=open_browser,
        build_overviews=build_overviews, workers=workers, warm=warm,
        expose_paths=expose_paths, allowed_hosts=allowed_hosts, basemap=basemap)
