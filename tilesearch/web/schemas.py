"""Request and response bodies of the JSON API (they make the OpenAPI document at /docs).

Every list and number in a request is bounded (MAX_EXAMPLES, MAX_IMAGES, MAX_K, MAX_PIXEL,
degrees within +-360) and floats must be finite, so a small request never costs much."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tilesearch.options import METRIC, K, SearchOptions

MAX_EXAMPLES = 1_000
"""Positive tile ids at most, and as many negative ones."""
MAX_IMAGES = 1_000
"""Image ids in an image filter at most."""
MAX_K = 500
"""Results of one search at most."""
MAX_PIXEL = 10_000_000
"""Largest pixel offset or size of a visible area."""
FINITE = ConfigDict(allow_inf_nan=False)
Degrees = Annotated[float, Field(ge=-360, le=360)]
Pixel = Annotated[float, Field(ge=-MAX_PIXEL, le=MAX_PIXEL)]
BBox = tuple[Degrees, Degrees, Degrees, Degrees]


class PixelWindow(BaseModel):
    col_off: int
    row_off: int
    width: int
    height: int


class VisibleArea(BaseModel):
    """The part of one image on screen, in its pixels: results are limited to tiles centred
    there (georeferenced images only)."""

    model_config = FINITE
    image: int = Field(description="store image id")
    col_off: Pixel
    row_off: Pixel
    width: float = Field(gt=0, le=MAX_PIXEL)
    height: float = Field(gt=0, le=MAX_PIXEL)


class SearchRequest(BaseModel):
    """A query by tile id and/or positive and negative examples, with optional filters."""

    model_config = FINITE
    tile: int | None = Field(None, description="query tile id")
    positives: list[int] = Field(default_factory=list, max_length=MAX_EXAMPLES,
                                 description="more like these tile ids")
    negatives: list[int] = Field(default_factory=list, max_length=MAX_EXAMPLES,
                                 description="not like these tile ids")
    k: int = Field(K, ge=1, le=MAX_K)
    metric: Literal["cosine", "euclidean"] = METRIC

    def options(self) -> SearchOptions:
        """The search's `SearchOptions`, as the CLI and the API take them."""
        return SearchOptions(k=self.k, metric=self.metric)
    images: list[int] = Field(default_factory=list, max_length=MAX_IMAGES,
                              description="only tiles of these image ids")
    bbox: BBox | None = Field(
        None, description="only tiles centred in west,south,east,north (EPSG:4326)")
    visible: VisibleArea | None = None


class ImageQueryParams(BaseModel):
    """Options of a search by an uploaded image (the form field `params`, as JSON)."""

    model_config = FINITE
    k: int = Field(K, ge=1, le=MAX_K)
    metric: Literal["cosine", "euclidean"] = METRIC

    def options(self) -> SearchOptions:
        """The search's `SearchOptions`, as the CLI and the API take them."""
        return SearchOptions(k=self.k, metric=self.metric)
    images: list[int] = Field(default_factory=list, max_length=MAX_IMAGES)
    bbox: BBox | None = None
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
