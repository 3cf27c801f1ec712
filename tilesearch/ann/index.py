"""A loaded search index: compact codes in FAISS, searched with an id filter inside."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.ann import gpu
from tilesearch.ann import spec as tuning
from tilesearch.ann.refine import Refiner
from tilesearch.ann.spec import IndexEntry, IndexSpec, _faiss, _last_line, head_bytes
from tilesearch.errors import StoreError
from tilesearch.store import Store, prefetch_head, unit


class AnnIndex:
    """A loaded index: codes for tiles ``0 .. count - 1`` of a store."""

    def __init__(self, index: Any, spec: IndexSpec, count: int, path: Path,
                 refiner: Refiner | None = None) -> None:
        self.index, self.spec, self.count, self.path = index, spec, count, path
        self.refiner = refiner
        """The finer second stage of a refining codec (`index` is then its first stage)."""

    @property
    def code_bytes(self) -> int:
        """Bytes of one tile's code (both stages of a refining codec)."""
        return self.refiner.code_bytes if self.refiner else int(self.index.sa_code_size())

    def search(self, query: np.ndarray, m: int, allowed: np.ndarray | None = None,
               needed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosine distances of about the `m` nearest coded tiles, best first.

        `allowed` (a boolean mask over tile ids) is applied inside FAISS through an id
        selector, so excluded tiles never take a place among the `m`. `needed` (default `m`)
        is how many of them the caller will keep, which sets the lists visited
        (`nprobe_for`)."""
        _faiss().omp_set_num_threads(1)  # one query: threads only add sync cost (measured)
        q = unit(np.asarray(query, np.float32).reshape(1, -1))
        try:
            dist, ids = self.search_batch(q, m, allowed, needed)
        except RuntimeError as exc:  # FAISS on a damaged file
            raise StoreError(f"{self.path}: the search index is damaged ({_last_line(exc)}); "
                             "rebuild it with 'tilesearch build-index --rebuild', or search "
                             "with --exact meanwhile") from exc
        keep = ids[0] >= 0
        return ids[0][keep], dist[0][keep]

    def search_batch(self, q: np.ndarray, m: int, allowed: np.ndarray | None = None,
                     needed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine distances and ids (-1 where fewer) of about the `m` nearest coded tiles to
        each row of unit vectors `q`, best first (`needed` as for `search`)."""
        faiss = _faiss()
        params = self._params(allowed, faiss, needed or m)
        first = self._first_stage(len(q), allowed, faiss)
        if self.refiner is None:
            sq, ids = first.search(q, min(m, self.count), params=params)
        else:  # candidates from the first stage, ranked by the finer codes
            least = tuning.REFINE_MIN
            wanted = min(self.count, max(least, int(m * tuning.REFINE_FACTOR) + least // 2))
            _, cand = first.search(q, wanted, params=params)
            sq = np.full((len(q), m), np.inf, np.float32)
            ids = np.full((len(q), m), -1, np.int64)
            for row, (x, c) in enumerate(zip(q, cand, strict=True)):
                i, d = self.refiner.rank(x[None], c, m)
                ids[row, :len(i)], sq[row, :len(i)] = i, d
        # unit vectors: squared L2 = 2 (1 - cosine)
        return (0.5 * sq).astype(np.float32), ids.astype(np.int64)

    def _first_stage(self, queries: int, allowed: np.ndarray | None, faiss: Any) -> Any:
        """The (first-stage) FAISS index to search: a copy on the GPUs for large unfiltered
        batches where there are GPUs (made once), else the memory-mapped one."""
        cpu = self.base
        if queries < gpu.BATCH_MIN or allowed is not None:
            return cpu
        if not hasattr(self, "_gpu"):
            self._gpu = gpu.batch_copy(cpu, faiss)
        return self._gpu if self._gpu is not None else cpu

    def _params(self, allowed: np.ndarray | None, faiss: Any, needed: int) -> Any:
        """Search parameters of the (first-stage) index: nprobe (more lists when many results
        are needed, see `nprobe_for`) and the allowed ids."""
        sel = None
        if allowed is not None:
            bits = np.packbits(np.asarray(allowed[: self.count], bool), bitorder="little")
            self._bits = bits  # FAISS keeps a raw pointer: hold the array while searching
            sel = faiss.IDSelectorBitmap(self.count, faiss.swig_ptr(bits))
        inner = (faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe_for(needed))
                 if self.spec.is_ivf else faiss.SearchParameters(sel=sel))
        if isinstance(self.base, faiss.IndexPreTransform):
            inner = faiss.SearchParametersPreTransform(index_params=inner)
        return inner

    @property
    def base(self) -> Any:
        """The FAISS index of the (first-stage) codes."""
        return self.refiner.base if self.refiner else self.index

    @cached_property
    def _nlist(self) -> int:
        return int(_faiss().extract_index_ivf(self.base).nlist)

    def nprobe_for(self, needed: int) -> int:
        """Lists a search visits when `needed` results are kept: the spec's nprobe, times
        ``ceil(needed / LARGE_M)``, and enough lists to hold 4 x `needed` tiles on average;
        at most every list."""
        scaled = self.spec.nprobe * max(1, math.ceil(needed / tuning.LARGE_M))
        holding = math.ceil(4 * needed * self._nlist / max(self.count, 1))
        return min(max(scaled, holding), self._nlist)

    def decode_range(self, first: int, stop: int) -> np.ndarray:
        """Approximate unit fingerprints of the coded tiles ``first .. stop - 1``, in id order:
        one FAISS call (the finer codes' `sa_decode`, else `reconstruct_n`), for scans that
        visit every tile, as find-all scores a store whose full vectors were dropped."""
        self._check_range(first, stop)
        if self.refiner is not None:
            r = self.refiner
            x = np.asarray(r.fine.sa_decode(np.ascontiguousarray(r.codes[first:stop])))
        else:
            self._need_direct_map()
            x = np.asarray(self.index.reconstruct_n(first, stop - first))
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.asarray(x / np.maximum(norms, 1e-12), np.float32)

    def dots(self, w: np.ndarray, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``x @ w`` and ``|x|^2`` of the decoded fingerprints x of tiles ``first .. stop - 1``
        (unit where `decode_range` is). For an orthonormal PCA before the codes (the default
        ``PCA256,L2norm,...``) they are computed in the codes' space, ``(y - b) @ (A w)`` and
        ``|y - b|^2``, without expanding to the fingerprint's width: a few times faster."""
        self._check_range(first, stop)
        pca = None if self.refiner is not None else _orthonormal_head(self.index)
        if pca is None:
            x = self.decode_range(first, stop)
            return x @ np.asarray(w, np.float32), np.ones(len(x), np.float32)
        a, b, inner = pca
        self._need_direct_map()
        y = np.asarray(inner.reconstruct_n(first, stop - first)) - b
        return y @ (a @ np.asarray(w, np.float32)), np.einsum("ij,ij->i", y, y)

    def _check_range(self, first: int, stop: int) -> None:
        if not 0 <= first <= stop <= self.count:
            raise ValueError(f"tiles {first}..{stop} are not all in the index of {self.count}")

    def _need_direct_map(self) -> None:
        if self.spec.is_ivf and not getattr(self, "_direct_map", False):
            _faiss().extract_index_ivf(self.index).make_direct_map()  # once: O(tiles)
            self._direct_map = True

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """Approximate (unit-length) fingerprints of coded tiles, from their codes."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.refiner is not None:
            return self.refiner.decode(ids)
        self._need_direct_map()
        return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else \
            np.zeros((0, self.index.d), np.float32)


def _orthonormal_head(index: Any) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """(A, b, inner index) when `index` is an orthonormal linear transform (y = A x + b),
    optionally followed by an L2 normalisation (whose reverse is the identity), in front of
    its codes; else None."""
    faiss = _faiss()
    if not isinstance(index, faiss.IndexPreTransform):
        return None
    chain = [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]
    head, rest = chain[0], chain[1:]
    if not (isinstance(head, faiss.LinearTransform) and head.is_orthonormal) or not all(
            isinstance(t, faiss.NormalizationTransform) for t in rest):
        return None
    a = faiss.vector_to_array(head.A).reshape(head.d_out, head.d_in).astype(np.float32)
    b = (faiss.vector_to_array(head.b).astype(np.float32) if head.have_bias
         else np.zeros(head.d_out, np.float32))
    return a, b, faiss.downcast_index(index.index)


def load(store: Store) -> AnnIndex | None:
    """The store's index, or None when none was built. Memory-mapped where FAISS can."""
    entry = IndexEntry.of(store)
    if entry is None:
        return None
    faiss = _faiss()
    path = store.path / entry.file
    prefetch_head(path, head_bytes(entry.factory, store.dim))
    try:  # zero-copy memory map: opens in milliseconds and searches at in-RAM speed
        # (IO_FLAG_MMAP proper turns IVF lists into on-disk lists, 10x slower per query)
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        raise StoreError(f"{path}: cannot read the search index ({exc}); rebuild it with "
                         f"'tilesearch build-index {store.path} --rebuild'") from exc
    spec = IndexSpec(entry.factory, entry.nprobe, entry.metric)
    return AnnIndex(index, spec, entry.count, path,
                    _refiner(store, entry, index, entry.count, faiss))


def _refiner(store: Store, entry: IndexEntry, index: Any, count: int,
             faiss: Any) -> Refiner | None:
    """The second stage of a refining index (its own files), or None. Layouts only pre-release
    versions wrote (one ``IndexRefine`` file, finer codes packed without a stride) are refused:
    rebuilding is the way on."""
    fine = entry.fine
    if isinstance(index, faiss.IndexRefine):
        raise StoreError(f"{store.path}: its search index was written by a pre-release "
                         "tilesearch in a layout no longer read; rebuild it with 'tilesearch "
                         f"build-index {store.path} --rebuild'")
    if fine:
        try:
            return Refiner.open(index, store.path / fine.codec, store.path / fine.codes,
                                count, faiss, fine.stride)
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreError(f"{store.path}: cannot read the search index's finer codes "
                             f"({exc}); rebuild it with 'tilesearch build-index "
                             f"{store.path} --rebuild'") from exc
    return None


def cached(store: Store) -> AnnIndex | None:
    """`load(store)`, kept with the open store until its manifest names another index."""
    entry = IndexEntry.of(store)
    key = entry.file if entry else ""
    hit: tuple[str, AnnIndex | None] | None = store.cache.get("ann")
    if hit is None or hit[0] != key:
        hit = (key, load(store))
        store.cache["ann"] = hit
    return hit[1]
