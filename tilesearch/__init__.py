"""tilesearch: find similar places in huge aerial and drone imagery.

Pipeline, one module per stage: raster (reading) -> tiling -> models (fingerprinting)
-> store -> search index (ann) -> search (knn) -> export / render; `api` ties them
together, `cli` and `web` are thin shells.
"""

from tilesearch.api import (
    build_index,
    check_transforms,
    evaluate,
    index,
    info,
    load_fingerprinter,
    search,
)
from tilesearch.errors import (
    InputError,
    MissingDependencyError,
    ModelError,
    ModelMismatchError,
    QueryError,
    StoreError,
    TilesearchError,
)
from tilesearch.ingest import IndexReport
from tilesearch.retrieval import Hit, SearchFilter, SearchResult
from tilesearch.store import Store

__version__ = "0.1.0"
__all__ = [
    "Hit",
    "IndexReport",
    "InputError",
    "MissingDependencyError",
    "ModelError",
    "ModelMismatchError",
    "QueryError",
    "SearchFilter",
    "SearchResult",
    "Store",
    "StoreError",
    "TilesearchError",
    "build_index",
    "check_transforms",
    "evaluate",
    "index",
    "info",
    "load_fingerprinter",
    "search",
]
