"""The geographic map: every georeferenced image of the store on one Web Mercator map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from tilesearch.web.errors import NotFound
from tilesearch.web.imagery import TileOutside
from tilesearch.web.routes_images import State, png_response, tile_outs
from tilesearch.web.schemas import MapOut, TileOut

router = APIRouter(prefix="/api/map")
Lon = Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)]


@router.get("", response_model=MapOut,
            summary="Bounds, zooms and footprints of the georeferenced images")
def geographic_map(request: Request, state: State) -> dict[str, Any]:
    return {**state.geomap().summary(), "basemap": request.app.state.basemap}


@router.get("/tiles/{z}/{x}/{y}.png", summary="A 256 px Web Mercator tile over every image",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def mercator_tile(request: Request, state: State, z: int, x: int, y: int) -> Response:
    try:
        png = state.mercator_tile(z, x, y)
    except TileOutside as exc:
        raise NotFound(str(exc)) from exc
    return png_response(request, png, f"{state.version}-g{state.geomap().version}-{z}-{x}-{y}")


@router.get("/tile-at", response_model=TileOut,
            summary="The stored tile under a point (nearest centre, first image drawn there)")
def tile_at(state: State, lon: Lon, lat: Lat) -> dict[str, Any]:
    return tile_outs(state, [state.tile_at_lonlat(lon, lat)])[0]
