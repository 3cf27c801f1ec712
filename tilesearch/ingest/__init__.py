"""Ingest: plan which tiles of which images to index, read them, fingerprint them and append
them to a store, on this machine or on a Ray cluster (`ray`), resumably."""

from tilesearch.ingest.local import index_images, prefetch, read_batches
from tilesearch.ingest.plan import (
    COARSE_CELLS,
    IndexReport,
    Progress,
    open_or_create_store,
    plan_images,
    record_failures,
)

__all__ = [
    "COARSE_CELLS",
    "IndexReport",
    "Progress",
    "index_images",
    "open_or_create_store",
    "plan_images",
    "prefetch",
    "read_batches",
    "record_failures",
]
