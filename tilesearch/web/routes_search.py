"""Searches: by tile ids (with positives and negatives) or by an uploaded image, answered as
JSON, GeoJSON or CSV."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from tilesearch import api, geo
from tilesearch.errors import QueryError
from tilesearch.outputs import export
from tilesearch.retrieval import SearchFilter, SearchResult, ground_side
from tilesearch.tiling import Window
from tilesearch.web.decode import decode_upload
from tilesearch.web.errors import Busy, TooLarge
from tilesearch.web.gate import SearchGate
from tilesearch.web.routes_images import State, tile_outs
from tilesearch.web.schemas import ImageQueryParams, SearchRequest, SearchResponse, VisibleArea
from tilesearch.web.state import StoreState

router = APIRouter(prefix="/api")
Format = Literal["json", "geojson", "csv"]


def search_filter(state: StoreState, images: list[int], bbox: Any,
                  visible: VisibleArea | None) -> SearchFilter | None:
    """The SearchFilter of image ids, a lon/lat box and a visible pixel area."""
    paths = [state.image(i).path for i in images]
    if visible is not None:
        info = state.image(visible.image)
        if not info.georeferenced:
            raise QueryError(f"{Path(info.path).name} has no georeferencing, so results cannot "
                             "be limited to the visible area; filter to the image instead")
        c0, r0 = max(0, int(visible.col_off)), max(0, int(visible.row_off))
        c1 = min(info.width, int(visible.col_off + visible.width) + 1)
        r1 = min(info.height, int(visible.row_off + visible.height) + 1)
        if c1 <= c0 or r1 <= r0:
            raise QueryError("the visible area does not overlap the image")
        assert info.crs is not None and info.transform is not None
        _, boxes, _ = geo.lonlat_footprints(info.crs, info.transform,
                                            [Window(c0, r0, c1 - c0, r1 - r0)])
        bbox = boxes[0]
        paths.append(info.path)
    flt = SearchFilter(bbox=tuple(bbox) if bbox else None, images=tuple(dict.fromkeys(paths)))
    return flt or None


def respond(request: Request, result: SearchResult, state: StoreState, fmt: Format) -> Any:
    """The result as the SearchResponse JSON, or a GeoJSON or CSV download (files named by
    their names only, unless the app exposes paths)."""
    paths: bool = request.app.state.expose_paths
    if fmt == "geojson":
        data = export.to_geojson(result, state.store(), paths=paths)
        return Response(json.dumps(data, allow_nan=False), media_type="application/geo+json",
                        headers={"Content-Disposition":
                                 'attachment; filename="tilesearch-results.geojson"'})
    if fmt == "csv":
        return Response(export.to_csv(result, paths=paths), media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="tilesearch-results.csv"'})
    q = result.query
    # Sent as built: its shape is SearchResponse (the OpenAPI schema); validating it again on
    # every request cost a third of a search's server time under load.
    query_tile = tile_outs(state, [q.tile])[0] if q.tile else None
    hits = tile_outs(state, [h.tile for h in result.hits])
    return JSONResponse({"query": q.description, "metric": result.metric,
                         "query_tile": query_tile,
                         "results": [{"rank": h.rank, "distance": h.distance, **out}
                                     for h, out in zip(result.hits, hits, strict=True)]})


FormatParam = Annotated[Format, Query(alias="format", description="json, geojson or csv")]
_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/geo+json": {}, "text/csv": {}}}}


@router.post("/search", response_model=SearchResponse, responses=_FORMATS,
             summary="The k tiles most like a tile, or like positives and unlike negatives")
def search(request: Request, state: State, req: SearchRequest,
           fmt: FormatParam = "json") -> Any:
    state.check_tiles([*req.positives, *req.negatives]
                      + ([req.tile] if req.tile is not None else []))
    where = search_filter(state, req.images, req.bbox, req.visible)
    result = gate(request).run(lambda: api.search(
        state.store(), tile=req.tile, positives=req.positives, negatives=req.negatives,
        where=where, options=req.options()))
    return respond(request, result, state, fmt)


@router.post("/search/image", response_model=SearchResponse, responses=_FORMATS,
             summary="The k tiles most like an uploaded image (PNG, JPEG, TIFF...)")
def search_image(request: Request, state: State, file: Annotated[UploadFile, File()],
                 params: Annotated[str, Form(description="ImageQueryParams as JSON")] = "{}",
                 fmt: FormatParam = "json") -> Any:
    try:
        opts = ImageQueryParams.model_validate_json(params)
    except ValidationError as exc:
        raise QueryError(f"params: {exc.errors()[0]['msg']}") from exc
    name = Path(file.filename or "upload").name
    limit: int = request.app.state.max_upload
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{name} is larger than the {limit // 1_000_000} MB upload limit")
    where = search_filter(state, opts.images, opts.bbox, opts.visible)
    slots: threading.BoundedSemaphore = request.app.state.decode_slots
    if not slots.acquire(timeout=gate(request).start_timeout):
        raise Busy("too many uploads are being decoded at once; try again later")
    try:
        pixels = decode_upload(name, data, state.tile_size,
                               ground_side(state.store(), opts.gsd))
    finally:
        slots.release()
        del data
    # Fingerprinted before taking a search slot: the model has its own lock, and a slot
    # held through inference would keep searches waiting (targets/load.py).
    query = api.image_query(state.store(), np.asarray(pixels), model=state.fingerprinter())
    result = gate(request).run(lambda: api.search(
        state.store(), image=query, where=where, options=opts.options()))
    result.query.description = f"image {name}"
    return respond(request, result, state, fmt)


def gate(request: Request) -> SearchGate:
    """The app's search slots and deadlines."""
    gate: SearchGate = request.app.state.gate
    return gate
