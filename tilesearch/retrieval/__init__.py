"""Retrieval: query vectors (a tile, a point, an image, several examples), distances, ranking
by the search index or exactly, filters applied inside the ranking, distinct places."""

from tilesearch.retrieval.dedupe import ACROSS, same_place
from tilesearch.retrieval.distances import (
    RAW_WEIGHT,
    blend,
    check_raw_weight,
    default_raw_weight,
    distances,
    fingerprints,
    mix_raw,
    raw_distances,
    raw_fingerprints,
)
from tilesearch.retrieval.filters import (
    SearchFilter,
    allowed_mask,
    load_polygon,
    load_regions,
    read_features,
)
from tilesearch.retrieval.marks import marks_from_geojson
from tilesearch.retrieval.query import (
    check_tile_id,
    combine_examples,
    ground_side,
    image_query,
    lonlat_query,
    tile_query,
)
from tilesearch.retrieval.ranking import expand_query, index_recall, nearest, ranked
from tilesearch.retrieval.results import DEFAULT_METRIC, METRICS, Hit, Query, SearchResult

__all__ = [
    "ACROSS",
    "DEFAULT_METRIC",
    "METRICS",
    "RAW_WEIGHT",
    "Hit",
    "Query",
    "SearchFilter",
    "SearchResult",
    "allowed_mask",
    "blend",
    "check_raw_weight",
    "check_tile_id",
    "combine_examples",
    "default_raw_weight",
    "distances",
    "expand_query",
    "fingerprints",
    "ground_side",
    "image_query",
    "index_recall",
    "load_polygon",
    "load_regions",
    "lonlat_query",
    "marks_from_geojson",
    "mix_raw",
    "nearest",
    "ranked",
    "raw_distances",
    "raw_fingerprints",
    "read_features",
    "same_place",
    "tile_query",
]
