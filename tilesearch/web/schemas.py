"""Request and response bodies of the JSON API (they make the OpenAPI document at /docs).

Every list and number in a request is bounded (MAX_EXAMPLES, MAX_IMAGES, MAX_K, MAX_PIXEL,
degrees within +-360) and floats must be finite, so a small request never costs much."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tilesearch.detect import AUDIT_DRAW
from tilesearch.options import GSD_RANGE, METRIC, K, SearchOptions

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
    gsd: float | None = Field(None, ge=GSD_RANGE[0], le=GSD_RANGE[1],
                              description="Metres a pixel of the upload: the query is then "
                                          "its centre covering one tile's ground")

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
    footprint: list[tuple[float, float]] | None = Field(
        None, description="the tile's outline in lon/lat, a closed ring of its corners "
                          "(georeferenced images only)")


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


class MapOut(BaseModel):
    """The store's georeferenced images on one Web Mercator map."""

    bounds: tuple[float, float, float, float] = Field(
        description="west, south, east, north of every georeferenced image (EPSG:4326)")
    max_zoom: int = Field(description="zoom of the finest image's native resolution")
    tiles: str = Field(description="URL template of the map tiles ({z}/{x}/{y}); it "
                                   "changes when images are added")
    footprints: dict[str, object] = Field(
        description="GeoJSON FeatureCollection of the images' outlines (lon/lat)")
    basemap: str | None = Field(description="the XYZ basemap URL template the server was "
                                            "started with (--basemap), if any")


class ErrorOut(BaseModel):
    error: str
    detail: str | list[dict[str, object]]


MAX_OUTLINES = 5_000
"""Place outlines one find answers with at most (the export holds every place)."""
MAX_SUGGESTIONS = 50
"""Tiles one suggestions request asks for at most."""


class MarkRequest(BaseModel):
    """Tiles to mark + or - in a label set (a tile marked again takes its new mark) and tiles
    whose marks to forget; the set is made with its first mark and gone with its last."""

    positives: list[int] = Field(default_factory=list, max_length=MAX_EXAMPLES,
                                 description="tile ids to mark + (like what is sought)")
    negatives: list[int] = Field(default_factory=list, max_length=MAX_EXAMPLES,
                                 description="tile ids to mark - (not it)")
    unlabel: list[int] = Field(default_factory=list, max_length=MAX_EXAMPLES,
                               description="tile ids whose marks to forget")


class LabelSetOut(BaseModel):
    name: str
    positives: list[int]
    negatives: list[int]


class LabelSetTilesOut(LabelSetOut):
    tiles: list[TileOut] = Field(description="the records of the marked tiles, by id")


class RemovedOut(BaseModel):
    name: str
    removed: int = Field(description="labels the set held")


class HeatmapOut(BaseModel):
    url: str = Field(description="the PNG overlay, one pixel per cell, at this threshold")
    cell: int = Field(description="cell size in image pixels")
    width: int = Field(description="image pixels the PNG spans (columns x cell)")
    height: int = Field(description="image pixels the PNG spans (rows x cell)")


class FindOut(BaseModel):
    """Every place like a label set at a threshold: the count, how sure it is, outlines."""

    label_set: str
    threshold: float
    tiles: int = Field(description="tiles scoring at or above the threshold")
    count: int = Field(description="places: those tiles merged where they overlap")
    expected_count: tuple[float, float, float] | None = Field(
        description="the count corrected by precision and recall, and its 90 % interval")
    folds: int = Field(description="cross-validation folds (0: too few labels to validate)")
    precision: float | None
    recall: float | None
    precision_interval: tuple[float, float] | None
    recall_interval: tuple[float, float] | None
    audited_count: dict[str, float] | None = Field(
        None, description="from the label set's answered audit at this threshold "
                          "(`tilesearch audit`): count, low, high (90 %) and what it rests on")
    audit_note: str | None = Field(None, description="why there is no audited count, or "
                                                     "what of the audit is left to answer")
    positives: int
    negatives: int
    outlines: dict[str, object] = Field(
        description="GeoJSON FeatureCollection of the places' outlines, best first: in the "
                    "pixels (column, row) of `image` when given, else in lon/lat")
    outlines_truncated: bool = Field(description="places beyond `outlines` were left out")
    heatmap: HeatmapOut | None = Field(description="the score overlay of `image`")
    heatmap_tiles: str | None = Field(
        None, description="URL template ({z}/{x}/{y}) of the score overlay as Web Mercator "
                          "map tiles over every georeferenced image (without `image`)")


class SuggestionOut(TileOut):
    probability: float = Field(description="the classifier's probability for the tile")


class SuggestionsOut(BaseModel):
    label_set: str
    suggestions: list[SuggestionOut]


MAX_AUDIT_DRAW = 100
"""Places found and tiles below the threshold one audit draws at most in the web app."""


class AuditRequest(BaseModel):
    """Draw a new audit of a label set (replacing its last one)."""

    threshold: float = Field(0.5, ge=0.0, le=1.0, description="the threshold to count at")
    n: int = Field(AUDIT_DRAW, ge=1, le=MAX_AUDIT_DRAW,
                   description="places found and tiles below the threshold to draw, each")


class AuditAnswers(BaseModel):
    """Answers about tiles of a label set's audit (a tile answered again takes the new one)."""

    present: list[int] = Field(default_factory=list, max_length=2 * MAX_AUDIT_DRAW,
                               description="tiles (for a place found: the place) that hold "
                                           "what the label set marks")
    absent: list[int] = Field(default_factory=list, max_length=2 * MAX_AUDIT_DRAW,
                              description="tiles that do not")


class AuditTileOut(TileOut):
    kind: Literal["found", "missed"] = Field(
        description="found: the best tile of a place found; missed: a tile below the "
                    "threshold")
    present: bool | None = Field(description="the answer, None while unanswered")


class AuditOut(BaseModel):
    """A label set's audit: what it was drawn for and its tiles to review."""

    label_set: str
    threshold: float = Field(description="the threshold it was drawn at")
    places: int = Field(description="places found at that threshold when it was drawn")
    current: bool = Field(description="drawn for today's labels and store (else stale: "
                                      "draw a new one)")
    unanswered: int
    tiles: list[AuditTileOut]
