"""Request and response bodies of the JSON API (they make the OpenAPI document at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PixelWindow(BaseModel):
    col_off: int
    row_off: int
    width: int
    height: int


class VisibleArea(BaseModel):
    """The part of one image on screen, in its pixels: results are limited to tiles centred
    there (georeferenced images only)."""

    image: int = Field(description="store image id")
    col_off: float
    row_off: float
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class SearchRequest(BaseModel):
    """A query by tile id and/or positive and negative examples, with optional filters."""

    tile: int | None = Field(None, description="query tile id")
    positives: list[int] = Field(default_factory=list, description="more like these tile ids")
    negatives: list[int] = Field(default_factory=list, description="not like these tile ids")
    k: int = Field(10, ge=1, le=500)
    metric: Literal["cosine", "euclidean"] = "cosine"
    images: list[int] = Field(default_factory=list, description="only tiles of these image ids")
    bbox: tuple[float, float, float, float] | None = Field(
        None, description="only tiles centred in west,south,east,north (EPSG:4326)")
    visible: VisibleArea | None = None


class ImageQueryParams(BaseModel):
    """Options of a search by an uploaded image (the form field `params`, as JSON)."""

    k: int = Field(10, ge=1, le=500)
    metric: Literal["cosine", "euclidean"] = "cosine"
    images: list[int] = Field(default_factory=list)
    bbox: tuple[float, float, float, float] | None = None
    visible: VisibleArea | None = None


class TileOut(BaseModel):
    tile_id: int
    image_id: int
    image: str = Field(description="file name of the source image")
    window: PixelWindow
    valid_fraction: float
    lon: float | None
    lat: float | None


class HitOut(TileOut):
    rank: int
    distance: float


class SearchResponse(BaseModel):
    query: str
    metric: str
    query_tile: TileOut | None
    results: list[HitOut]


class ImageOut(BaseModel):
    id: int
    name: str
    width: int
    height: int
    tiles: int
    max_zoom: int = Field(description="zoom of full resolution in the map tile pyramid")
    georeferenced: bool
    crs: str | None


class ErrorOut(BaseModel):
    error: str
    detail: str | list[dict[str, object]]
