"""Ingest: plan which tiles of which images to index, read them, fingerprint them and append
them to a store, on this machine or on a Ray cluster (`ray`), resumably."""

from tilesearch.ingest.local import index_images, prefetch, read_batches
from tilesearch.ingest.plan import (
    COARSE_CELLS,
    IndexReport,
    Progress,
    Scaling,
    open_or_create_store,
    plan_images,
    record_failures,
)
from tilesearch.ingest.ray import import_ray, index_on_ray, use_cluster
from tilesearch.ingest.reading import Batch, Layout, layout_of, model_for

__all__ = [
    "COARSE_CELLS",
    "Batch",
    "IndexReport",
    "Layout",
    "Progress",
    "Scaling",
    "import_ray",
    "index_images",
    "index_on_ray",
    "layout_of",
    "model_for",
    "open_or_create_store",
    "plan_images",
    "prefetch",
    "read_batches",
    "record_failures",
    "use_cluster",
]
