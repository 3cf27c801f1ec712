"""Store facts, images, map tiles, tile records and thumbnails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from tilesearch import api
from tilesearch.records import TileMeta
from tilesearch.web.errors import NotFound
from tilesearch.web.imagery import TileOutside
from tilesearch.web.paths import public_info
from tilesearch.web.schemas import ImageOut, TileOut
from tilesearch.web.state import StoreState

router = APIRouter(prefix="/api")
CACHE_CONTROL = "public, max-age=86400, immutable"
"""The store is append-only: a map tile or thumbnail never changes for a given id."""


def get_state(request: Request) -> StoreState:
    """The served store, brought up to date with images indexed since the last request."""
    state: StoreState = request.app.state.store
    state.refresh()
    return state


State = Annotated[StoreState, Depends(get_state)]


def png_response(request: Request, content: bytes, etag: str) -> Response:
    """PNG bytes with caching headers; 304 when the client already holds this version."""
    tag = f'"{etag}"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": tag}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="image/png", headers=headers)


def tile_outs(state: StoreState, metas: list[TileMeta]) -> list[dict[str, Any]]:
    """The answers' records of tiles, each with its lon/lat outline where it has one."""
    return [tile_out(m, ring) for m, ring in zip(metas, state.rings(metas), strict=True)]


def tile_out(meta: TileMeta, ring: list[tuple[float, float]] | None) -> dict[str, Any]:
    w = meta.window
    return {"tile_id": meta.tile_id, "image_id": meta.image_id, "image": Path(meta.source).name,
            "window": {"col_off": w.col_off, "row_off": w.row_off, "width": w.width,
                       "height": w.height},
            "valid_fraction": round(meta.valid_fraction, 4),
            "lon": meta.lonlat[0] if meta.lonlat else None,
            "lat": meta.lonlat[1] if meta.lonlat else None,
            "footprint": [list(p) for p in ring] if ring else None}


@router.get("/info", summary="Store facts: images, tiles, model, bytes on disk, warming")
def info(request: Request, state: State) -> dict[str, Any]:
    facts = api.info(state.store())
    if not request.app.state.expose_paths:
        facts = public_info(facts)
    facts["images_list"] = [state.image_summary(i) for i in sorted(state.images)]
    facts["warm"] = state.warmer.status() if state.warmer else None
    return facts


@router.get("/images", response_model=list[ImageOut], summary="The indexed images")
def images(state: State) -> list[dict[str, Any]]:
    return [state.image_summary(i) for i in sorted(state.images)]


@router.get("/images/{image_id}/tiles/{z}/{x}/{y}.png", summary="A 256 px map tile of an image",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def map_tile(request: Request, state: State, image_id: int, z: int, x: int, y: int) -> Response:
    try:
        png = state.map_tile(image_id, z, x, y)
    except TileOutside as exc:
        raise NotFound(str(exc)) from exc
    return png_response(request, png, f"{state.version}-i{image_id}-{z}-{x}-{y}")


@router.get("/images/{image_id}/tile-at", response_model=TileOut,
            summary="The stored tile at a pixel of an image (nearest centre)")
def tile_at(state: State, image_id: int, col: Annotated[float, Query()],
            row: Annotated[float, Query()]) -> dict[str, Any]:
    return tile_outs(state, [state.tile_at(image_id, col, row)])[0]


@router.get("/tiles/{tile_id}", response_model=TileOut, summary="One tile's record")
def tile(state: State, tile_id: int) -> dict[str, Any]:
    return tile_outs(state, [state.tile(tile_id)])[0]


@router.get("/tiles/{tile_id}/thumbnail.png", summary="A tile's pixels as a square PNG",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def thumbnail(request: Request, state: State, tile_id: int,
              size: Annotated[int, Query(ge=16, le=512)] = 128) -> Response:
    png = state.thumbnail(tile_id, size)
    return png_response(request, png, f"{state.version}-t{tile_id}-{size}")
