"""Label sets and find all: list, mark and unmark tiles, remove a set; every place like a set
at a threshold (count, validation, outlines), its score heatmap, the tiles to label next, and
every place as GeoJSON or CSV. Marks are written through `api.label` (its own writable
connection), one write at a time; fitting and scoring run in the search slots."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
from affine import Affine
from fastapi import APIRouter, Query, Request, Response

from tilesearch import api
from tilesearch.errors import QueryError, StoreError
from tilesearch.outputs import detections_csv
from tilesearch.raster import warp_grid
from tilesearch.retrieval import SearchFilter
from tilesearch.store import LabelSet, check_name
from tilesearch.web.errors import Busy, NotFound
from tilesearch.web.finding import (
    FindCache,
    heatmap_png,
    label_set,
    lonlat_outlines,
    pixel_outlines,
)
from tilesearch.web.imagery import TILE, TileOutside
from tilesearch.web.routes_images import State, tile_outs
from tilesearch.web.routes_search import gate, search_filter
from tilesearch.web.schemas import (
    MAX_IMAGES,
    MAX_OUTLINES,
    MAX_SUGGESTIONS,
    FindOut,
    LabelSetOut,
    LabelSetTilesOut,
    MarkRequest,
    RemovedOut,
    SuggestionsOut,
)
from tilesearch.web.state import StoreState

router = APIRouter(prefix="/api")
Threshold = Annotated[float, Query(ge=0.0, le=1.0, description="probability, 0 to 1")]
Images = Annotated[list[int], Query(max_length=MAX_IMAGES,
                                    description="only places of these image ids")]
NO_STORE = {"Cache-Control": "no-store"}


def cache(request: Request) -> FindCache:
    found: FindCache = request.app.state.find_cache
    return found


@contextlib.contextmanager
def writing(request: Request) -> Iterator[None]:
    """One label write at a time in this server (the store's write lock is per process
    and file: two at once would refuse each other); Busy when another process writes."""
    lock: threading.Lock = request.app.state.label_lock
    if not lock.acquire(timeout=gate(request).start_timeout):
        raise Busy("labels are being written by other requests; try again later")
    try:
        yield
    except StoreError as exc:
        if "another process is writing" in str(exc):
            raise Busy("another process is writing to the store (indexing?); try again "
                       "when it is done") from exc
        raise
    finally:
        lock.release()


def with_tiles(state: StoreState, labels: LabelSet) -> dict[str, Any]:
    ids = sorted({*labels.positives, *labels.negatives})
    return {**labels.to_dict(), "tiles": tile_outs(state, state.store().tiles(ids))}


@router.get("/labels", response_model=list[LabelSetOut], summary="Every label set of the store")
def label_sets(state: State) -> list[dict[str, Any]]:
    return [s.to_dict() for s in api.label_sets(state.store())]


@router.get("/labels/{name}", response_model=LabelSetTilesOut,
            summary="A label set: its marked tiles, with their records")
def get_label_set(state: State, name: str) -> dict[str, Any]:
    return with_tiles(state, label_set(state.store(), name))


@router.post("/labels/{name}", response_model=LabelSetTilesOut,
             summary="Mark tiles + or - in a label set (made when new), or forget their marks")
def mark(request: Request, state: State, name: str, req: MarkRequest) -> dict[str, Any]:
    check_name(name)
    ids = [*req.positives, *req.negatives, *req.unlabel]
    if not ids:
        raise QueryError("name tiles to mark (positives, negatives) or unmark (unlabel)")
    state.check_tiles(ids)
    with writing(request):
        labels = api.label(state.path, name, positives=req.positives,
                           negatives=req.negatives, unlabel=req.unlabel)
    return with_tiles(state, labels)


@router.delete("/labels/{name}", response_model=RemovedOut, summary="Remove a label set")
def remove(request: Request, state: State, name: str) -> dict[str, Any]:
    label_set(state.store(), name)
    with writing(request):
        return {"name": name, "removed": api.remove_label_set(state.path, name)}


def where_of(state: StoreState, images: list[int]) -> SearchFilter | None:
    return search_filter(state, images, None, None) if images else None


@router.get("/labels/{name}/find", response_model=FindOut,
            summary="Every place like a label set at a threshold: count, validation, outlines")
def find(request: Request, state: State, name: str, threshold: Threshold = 0.5,
         images: Images = [],  # noqa: B006 (FastAPI copies query defaults)
         image: Annotated[int | None, Query(description="outlines and heatmap in this "
                                                        "image's pixels")] = None,
         outlines: Annotated[int, Query(ge=0, le=MAX_OUTLINES)] = 1000) -> Any:
    where = where_of(state, images)
    if image is not None:
        state.image(image)
    found = cache(request)

    def run() -> dict[str, Any]:
        result = found.find(state, name, threshold, where)
        heat, tiles = None, None
        if image is None:
            shapes, cut = lonlat_outlines(result, outlines)
            if state.geomap().placed:
                tiles = (f"/api/labels/{quote(name)}/heatmap/tiles/{{z}}/{{x}}/{{y}}.png"
                         f"?threshold={threshold}")
        else:
            windows, _ = found.tables(state, state.store().count)
            shapes, cut = pixel_outlines(result, windows, image, outlines)
            grid, cell = found.heatmap(state, name, image)
            heat = {"url": f"/api/labels/{name}/heatmap/{image}.png?threshold={threshold}",
                    "cell": cell, "width": grid.shape[1] * cell,
                    "height": grid.shape[0] * cell}
        labels = found.scored(state, name).scores.labels
        return {**result.summary(), "positives": len(labels.positives),
                "negatives": len(labels.negatives), "outlines": shapes,
                "outlines_truncated": cut, "heatmap": heat, "heatmap_tiles": tiles}

    return gate(request).run(run)


@router.get("/labels/{name}/heatmap/{image_id}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="A label set's score heatmap over an image: a PNG, one pixel per cell")
def heatmap(request: Request, state: State, name: str, image_id: int,
            threshold: Annotated[float | None, Query(ge=0.0, le=1.0)] = None) -> Response:
    grid, _ = gate(request).run(lambda: cache(request).heatmap(state, name, image_id))
    return Response(heatmap_png(grid, threshold), media_type="image/png", headers=NO_STORE)


@router.get("/labels/{name}/heatmap/tiles/{z}/{x}/{y}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="A label set's score heatmap as a Web Mercator map tile")
def heatmap_tile(request: Request, state: State, name: str, z: int, x: int, y: int,
                 threshold: Annotated[float | None, Query(ge=0.0, le=1.0)] = None) -> Response:
    geomap = state.geomap()
    try:
        under = geomap.under(z, x, y)
    except TileOutside as exc:
        raise NotFound(str(exc)) from exc

    def draw() -> np.ndarray:
        out = np.full((TILE, TILE), -1.0, np.float32)
        for p in under:
            grid, cell = cache(request).heatmap(state, name, p.image_id)
            assert p.info.crs is not None and p.info.transform is not None
            cells = Affine(*p.info.transform) * Affine.scale(cell)
            np.maximum(out, warp_grid(grid, p.info.crs, tuple(cells)[:6], x, y, z), out=out)
        return out

    return Response(heatmap_png(gate(request).run(draw), threshold), media_type="image/png",
                    headers=NO_STORE)


@router.get("/labels/{name}/suggestions", response_model=SuggestionsOut,
            summary="The unlabelled tiles whose labels would help the classifier most")
def suggestions(request: Request, state: State, name: str,
                n: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = 6) -> dict[str, Any]:
    picks = gate(request).run(lambda: cache(request).suggestions(state, name, n))
    tiles = state.store().tiles([t for t, _ in picks])
    return {"label_set": name, "suggestions": [
        {**out, "probability": round(p, 4)}
        for out, (_, p) in zip(tile_outs(state, tiles), picks, strict=True)]}


@router.get("/labels/{name}/detections", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}, "text/csv": {}}}},
            summary="Every place like a label set at a threshold, as GeoJSON or CSV")
def export(request: Request, state: State, name: str, threshold: Threshold = 0.5,
           images: Images = [],  # noqa: B006
           fmt: Annotated[Literal["geojson", "csv"], Query(alias="format")] = "geojson"
           ) -> Response:
    where = where_of(state, images)
    result = gate(request).run(lambda: cache(request).find(state, name, threshold, where))
    headers = {"Content-Disposition": f'attachment; filename="{name}-places.{fmt}"',
               **NO_STORE}
    if fmt == "csv":
        return Response(detections_csv(result), media_type="text/csv", headers=headers)
    return Response(json.dumps(result.to_geojson(), allow_nan=False),
                    media_type="application/geo+json", headers=headers)
