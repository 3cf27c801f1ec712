"""FAISS on GPUs, where the installed FAISS has GPU support (faiss-gpu) and sees a GPU.

Two steps of `tilesearch.ann` move there: the k-means that trains the inverted lists, and
searches of many queries at once (database-side augmentation asks one query a tile). Single
queries stay on the CPU, where they take milliseconds without a copy of the index to a GPU.
Anything FAISS cannot do on a GPU falls back to the CPU with a warning, so results never
depend on whether a GPU was there. With faiss-cpu (no GPU support) nothing here runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

BATCH_MIN = 1024
"""Batches of at least this many queries are searched on the GPUs (a copy of the first-stage
index is made once and kept); smaller ones on the CPU."""


def count(faiss: Any) -> int:
    """GPUs FAISS can use (0 with faiss-cpu)."""
    try:
        return int(getattr(faiss, "get_num_gpus", lambda: 0)())
    except RuntimeError:  # a GPU build without a working driver
        return 0


@contextmanager
def kmeans_on_gpus(index: Any, faiss: Any) -> Iterator[bool]:
    """While in the block, `index`'s inverted lists (if any) train their k-means on all GPUs,
    the usual FAISS way (a GPU flat index as ``clustering_index``). Yields whether they do."""
    ivf = _ivf(index, faiss) if count(faiss) else None
    gpu = None
    if ivf is not None:
        try:
            gpu = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(int(ivf.d)))
        except RuntimeError as exc:
            log.warning("training the index on the CPU: FAISS could not use the GPU (%s)", exc)
    if ivf is None or gpu is None:
        yield False
        return
    ivf.clustering_index = gpu  # FAISS keeps a raw pointer: `gpu` lives until the block ends
    try:
        yield True
    finally:
        ivf.clustering_index = None


def _ivf(index: Any, faiss: Any) -> Any | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:  # not an inverted file: nothing to cluster
        return None


def batch_copy(index: Any, faiss: Any) -> Any | None:
    """A copy of `index` on all GPUs for batch searches, or None (no GPU, or an index FAISS
    cannot put on one)."""
    if not count(faiss):
        return None
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except RuntimeError as exc:
        log.warning("searching on the CPU: FAISS cannot put this index on a GPU (%s)", exc)
        return None
