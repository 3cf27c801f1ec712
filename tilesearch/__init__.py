"""tilesearch: find similar places in huge aerial and drone imagery.

The pipeline, one subpackage a stage: `raster` (reading) -> `tiling` -> `models`
(fingerprinting) -> `store` -> `ann` (search index) -> `retrieval` -> `detect` (find all) ->
`outputs`; `ingest` runs the first stages into a store, `quality` measures retrieval; `api`
ties them together, and `cli` and `web` are thin shells over it. docs/design.md has the module map.
"""

from tilesearch.api import (
    FindResult,
    Scores,
    answer_audit,
    audit,
    build_index,
    build_overviews,
    check,
    evaluate,
    export_fingerprints,
    find,
    heatmaps,
    image_query,
    index,
    info,
    label,
    label_sets,
    load_fingerprinter,
    remove_label_set,
    robustness,
    scores,
    search,
    store_fingerprinter,
    suggestions,
    warm,
)
from tilesearch.errors import (
    InputError,
    MissingDependencyError,
    ModelError,
    ModelMismatchError,
    OptionError,
    QueryError,
    StoreError,
    TilesearchError,
)
from tilesearch.ingest import IndexReport
from tilesearch.options import BuildOptions, IndexOptions, SearchOptions
from tilesearch.outputs import export, render
from tilesearch.retrieval import Hit, Query, SearchFilter, SearchResult
from tilesearch.store import CheckReport, Store

__version__ = "0.1.0"
__all__ = [
    "BuildOptions",
    "CheckReport",
    "FindResult",
    "Hit",
    "IndexOptions",
    "IndexReport",
    "InputError",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "OptionError",
    "Query",
    "QueryError",
    "Scores",
    "SearchFilter",
    "SearchOptions",
    "SearchResult",
    "Store",
    "StoreError",
    "TilesearchError",
    "answer_audit",
    "audit",
    "build_index",
    "build_overviews",
    "check",
    "evaluate",
    "export",
    "export_fingerprints",
    "find",
    "heatmaps",
    "image_query",
    "index",
    "info",
    "label",
    "label_sets",
    "load_fingerprinter",
    "remove_label_set",
    "render",
    "robustness",
    "scores",
    "search",
    "store_fingerprinter",
    "suggestions",
    "warm",
]
