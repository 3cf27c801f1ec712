"""Approximate search: a FAISS index of compact fingerprint codes, learned from the store.

``build(store)`` learns a compression from the store's own fingerprints (no labels) and
encodes every tile into a few dozen bytes; ``AnnIndex.search`` answers a cosine query from the
codes. Below ``EXACT_BELOW`` tiles no index is built (exact search is already fast); below
``IVF_ABOVE`` the codes are scanned exhaustively, above it an inverted file (IVF) visits only
the lists nearest the query.

The index lives in ``<store>/ann/index-<count>.faiss`` and the store manifest's ``ann`` entry
names it, so a build replaces the previous one atomically; a refining codec's finer codes
sit beside it (`refine`). Tiles appended after a build
(ids >= its count) are not in it: searches scan them exactly from their full vectors and
merge, until the next ``build`` adds them with the same codec (incremental). With
``keep_full=False`` the full-precision vectors of encoded tiles are dropped from the store,
which then holds only codes (``Store.drop_full_before``); with them kept, candidates from the
codes are re-ranked exactly.
"""

from tilesearch.ann import augment
from tilesearch.ann.augment import augment_set, combine
from tilesearch.ann.building import BuildReport, build, new_index, train
from tilesearch.ann.index import AnnIndex, cached, load
from tilesearch.ann.spec import (
    DEFAULT_CODEC,
    EXACT_BELOW,
    IVF_ABOVE,
    LARGE_M,
    NPROBE,
    REFINE_MIN,
    REFINE_NPROBE,
    RERANK_FACTOR,
    RERANK_MIN,
    IndexEntry,
    IndexSpec,
    choose_spec,
    default_nprobe,
    fit_codec,
    head_bytes,
)

__all__ = [
    "DEFAULT_CODEC",
    "EXACT_BELOW",
    "IVF_ABOVE",
    "LARGE_M",
    "NPROBE",
    "REFINE_MIN",
    "REFINE_NPROBE",
    "RERANK_FACTOR",
    "RERANK_MIN",
    "AnnIndex",
    "BuildReport",
    "IndexEntry",
    "IndexSpec",
    "augment",
    "augment_set",
    "build",
    "cached",
    "choose_spec",
    "combine",
    "default_nprobe",
    "fit_codec",
    "head_bytes",
    "load",
    "new_index",
    "train",
]
