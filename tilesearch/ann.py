"""Approximate search: a FAISS index of compact fingerprint codes, learned from the store.

``build(store)`` learns a compression from the store's own fingerprints (no labels) and
encodes every tile into a few dozen bytes; ``AnnIndex.search`` answers a cosine query from the
codes. Below ``EXACT_BELOW`` tiles no index is built (exact search is already fast); below
``IVF_ABOVE`` the codes are scanned exhaustively, above it an inverted file (IVF) visits only
the lists nearest the query.

The index lives in ``<store>/ann/index-<count>.faiss`` and the store manifest's ``ann`` entry
names it, so a build replaces the previous one atomically; a refining codec's finer codes
sit beside it (`tilesearch.refine`). Tiles appended after a build
(ids >= its count) are not in it: searches scan them exactly from their full vectors and
merge, until the next ``build`` adds them with the same codec (incremental). With
``keep_full=False`` the full-precision vectors of encoded tiles are dropped from the store,
which then holds only codes (``Store.drop_full_before``); with them kept, candidates from the
codes are re-ranked exactly.
"""

from __future__ import annotations

import math
import os
import re
import time
import weakref
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import ann_gpu, augment
from tilesearch.errors import MissingDependencyError, QueryError, StoreError
from tilesearch.pages import prefetch_head
from tilesearch.refine import CodeFile, Refiner, codec_name, row_stride
from tilesearch.store import Store

EXACT_BELOW = 20_000
"""Stores smaller than this are searched exactly (a few ms); `build` makes no index."""
IVF_ABOVE = 50_000
"""From this size on the codes sit in an inverted file; below it they are scanned in full."""
DEFAULT_CODEC = "PCA256,L2norm,SQ6"
"""Codec (FAISS factory string, without the IVF part) used unless one is given: 256
principal components fitted about the origin (see `train`), re-normalised, 6 bits each
(192 bytes a tile, 1,024x smaller than the float32 pixels of the 128 px stride cell each tile
adds). Chosen as the 192-byte codec that ranks best on real fingerprints, codes alone
(benchmarks/bench_codecs.py); ``PCA256,L2norm,SQ8`` (256 bytes) keeps more recall when a
million crowded tiles are searched from their codes alone (benchmarks/bench_ann.py)."""
NPROBE = 16
"""Inverted lists visited per query by default: recall@10 is the same from 16 lists on at
180,000, 1 M and 10 M tiles (benchmarks/bench_ann.py), and 32 cost twice the time."""
RERANK_MIN = 128
"""With full vectors kept, at least this many candidates from the codes are re-ranked exactly.
Each costs a read of its full vector, so fewer is faster. 256 were re-ranked before; with 128,
recall@10 at 180,000 tiles is still 1.000 (benchmarks/bench_ann.py)."""
RERANK_FACTOR = 1.5
"""With full vectors kept, a search for m tiles re-ranks ``max(RERANK_MIN, 1.5 m)``
candidates. With `LARGE_M`: at 180,000 tiles recall@1000 went from 0.938 (exactly m
re-ranked, from 16 lists) to 0.999 (benchmarks/bench_ann.py)."""
LARGE_M = 250
"""A search for m > `LARGE_M` tiles visits ``nprobe * ceil(m / LARGE_M)`` lists (at most
all), since the top 1,000 of 180,000 tiles lie in more lists than the nearest 16 (see
`RERANK_FACTOR`)."""
REFINE_FACTOR = 1.5
"""With a refining codec (``...,Refine(SQ8)``) the first-stage codes propose this many times
the m candidates asked for, plus `REFINE_MIN` // 2 (and at least `REFINE_MIN`), and the finer
codes rank them: 32 candidates for 10 results (see `REFINE_MIN` for what they keep)."""
REFINE_NPROBE = 8
"""Lists a query visits by default under a refining codec: its first stage only has to put the
true top 10 among `REFINE_MIN` candidates, and recall@10 was the same from 8 lists on at 1 M
and 10 M synthetic tiles (benchmarks/bench_ann.py); at 10 M, with the refining codes in the
VM host's cache, a fresh query took 8.6 ms with 8 lists and 11 ms with 16."""
REFINE_MIN = 32
"""At least this many candidates are ranked by a refining codec's finer codes. Each costs one
read from disk when its code is not cached, so fewer is faster: at 10 M synthetic tiles
recall@10 was 0.9875 with 32 candidates as with 256 (benchmarks/bench_ann.py). Reads are
what a query waits for when the codes are not cached: on this machine's disk 32 cold pages
take 11.6 ms (benchmarks/bench_prefetch.py --file). A first stage much coarser than the
default codec's needs more."""
TRAIN_MAX = 100_000
"""At most this many fingerprints (a seeded sample) train the codec and the IVF."""
_ADD_CHUNK = 50_000
SPACE = "unit-l2"
"""How vectors are compared inside the index (recorded, so an index made otherwise is refused)."""


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss is a core dependency
        raise MissingDependencyError("faiss-cpu", purpose="approximate search") from exc
    return faiss


@dataclass(frozen=True)
class IndexSpec:
    """What `build` makes: the factory string, lists visited per query, and the metric."""

    factory: str
    nprobe: int = NPROBE
    metric: str = "cosine"

    @property
    def is_ivf(self) -> bool:
        return "IVF" in self.factory

    @property
    def is_refine(self) -> bool:
        """Second-stage codes re-rank the first stage's candidates (``Refine(...)``)."""
        return ",Refine(" in self.factory or self.factory.endswith(",RFlat")


def _split_refine(codec: str) -> tuple[str, str]:
    """``"PCA256,SQ8,Refine(SQ8)"`` -> ``("PCA256,SQ8", ",Refine(SQ8)")``."""
    for mark in (",Refine(", ",RFlat"):
        at = codec.find(mark)
        if at >= 0:
            return codec[:at], codec[at:]
    return codec, ""


def default_nprobe(codec: str) -> int:
    """`REFINE_NPROBE` for a refining codec, else `NPROBE`."""
    return REFINE_NPROBE if _split_refine(codec)[1] else NPROBE


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def fit_codec(codec: str, dim: int) -> str:
    """`codec` with a leading PCA to more dimensions than the fingerprints have capped at
    their dimension (``PCA256,...`` on 22-d fingerprints is ``PCA22,...``)."""
    m = re.match(r"(PCA[RW]*)(\d+)", codec)
    return f"{m[1]}{dim}{codec[m.end():]}" if m and int(m[2]) > dim else codec


def choose_spec(n: int, codec: str = DEFAULT_CODEC, nprobe: int | None = None) -> IndexSpec:
    """The index for a store of `n` tiles: exhaustive codes, or IVF with about sqrt(n) lists
    (a power of two; 4096 at 10 million tiles, so adding stays cheap on a small machine).
    `nprobe` defaults to `default_nprobe`."""
    nprobe = nprobe or default_nprobe(codec)
    if n < IVF_ABOVE:
        return IndexSpec(codec, nprobe)
    nlist = int(min(65536, 2 ** round(math.log2(math.sqrt(n)))))
    first, refine = _split_refine(codec)
    pre, _, quant = first.rpartition(",")
    return IndexSpec(f"{pre + ',' if pre else ''}IVF{nlist},{quant}{refine}", nprobe)


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
        q = augment.unit(np.asarray(query, np.float32).reshape(1, -1))
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
            wanted = min(self.count, max(REFINE_MIN, int(m * REFINE_FACTOR) + REFINE_MIN // 2))
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
        if queries < ann_gpu.BATCH_MIN or allowed is not None:
            return cpu
        if not hasattr(self, "_gpu"):
            self._gpu = ann_gpu.batch_copy(cpu, faiss)
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
        scaled = self.spec.nprobe * max(1, math.ceil(needed / LARGE_M))
        holding = math.ceil(4 * needed * self._nlist / max(self.count, 1))
        return min(max(scaled, holding), self._nlist)

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """Approximate (unit-length) fingerprints of coded tiles, from their codes."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.refiner is not None:
            return self.refiner.decode(ids)
        if self.spec.is_ivf and not getattr(self, "_direct_map", False):
            _faiss().extract_index_ivf(self.index).make_direct_map()  # once: O(tiles)
            self._direct_map = True
        return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else \
            np.zeros((0, self.index.d), np.float32)


def load(store: Store) -> AnnIndex | None:
    """The store's index, or None when none was built. Memory-mapped where FAISS can."""
    entry = store.manifest.get("ann")
    if not entry:
        return None
    faiss = _faiss()
    path = store.path / entry["file"]
    if entry.get("space") != SPACE:
        raise StoreError(f"{store.path}: its search index was made by an older tilesearch; "
                         f"rebuild it with 'tilesearch build-index {store.path} --rebuild'")
    prefetch_head(path, head_bytes(entry["factory"], store.dim))
    try:  # zero-copy memory map: opens in milliseconds and searches at in-RAM speed
        # (IO_FLAG_MMAP proper turns IVF lists into on-disk lists, 10x slower per query)
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        raise StoreError(f"{path}: cannot read the search index ({exc}); rebuild it with "
                         f"'tilesearch build-index {store.path} --rebuild'") from exc
    spec = IndexSpec(entry["factory"], int(entry["nprobe"]), entry["metric"])
    count = int(entry["count"])
    return AnnIndex(index, spec, count, path, _refiner(store, entry, index, count, faiss))


def head_bytes(factory: str, dim: int) -> int:
    """About how many bytes of an index file come before its inverted lists (a PCA keeps
    all its eigenvectors and the projection; then the coarse centroids and the list sizes),
    with 1 MB to spare. FAISS maps the file for random access, so loading it would read these
    a page a fault; `load` asks for them at once."""
    pca = re.search(r"PCA[RW]?(\d+)", factory)
    ivf = re.search(r"IVF(\d+)", factory)
    d = int(pca.group(1)) if pca else dim
    nlist = int(ivf.group(1)) if ivf else 0
    pca_bytes = 4 * (dim * dim + dim * d + 3 * dim) if pca else 0
    return pca_bytes + 4 * (nlist * d + 4 * d) + 16 * nlist + (1 << 20)


def _refiner(store: Store, entry: dict[str, Any], index: Any, count: int,
             faiss: Any) -> Refiner | None:
    """The second stage of a refining index: its own files, or inside an ``IndexRefine``."""
    fine = entry.get("fine")
    if fine:
        try:
            return Refiner.open(index, store.path / fine["codec"], store.path / fine["codes"],
                                count, faiss, fine.get("stride"))
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreError(f"{store.path}: cannot read the search index's finer codes "
                             f"({exc}); rebuild it with 'tilesearch build-index "
                             f"{store.path} --rebuild'") from exc
    if isinstance(index, faiss.IndexRefine):
        return Refiner.of_index_refine(index, faiss)
    return None


@dataclass
class BuildReport:
    """What `build` did."""

    action: str  # "none", "built", "extended", "up to date"
    tiles: int
    factory: str | None
    code_bytes: int | None
    seconds: float
    dropped_full: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build(store: Store, *, codec: str | None = None, nprobe: int | None = None,
          rebuild: bool = False, keep_full: bool = True, force: bool = False,
          seed: int = 0) -> BuildReport:
    """Build or extend the store's index; see the module docstring.

    Extends the existing index with tiles appended since it was built unless `rebuild` (which
    needs the full vectors) or the store has grown past `IVF_ABOVE` since. `force` builds one
    even below `EXACT_BELOW`. `keep_full=False` then drops the encoded tiles' full vectors.
    `codec` defaults to the existing index's, else `DEFAULT_CODEC`; `nprobe` to the existing
    index's when the codec stays, else `default_nprobe`."""
    t0 = time.perf_counter()
    _faiss().omp_set_num_threads(os.cpu_count() or 1)
    if not store.writable:
        raise StoreError(f"{store.path}: open the store writable to build its index")
    try:
        old = load(store)
    except StoreError:
        if not rebuild:
            raise
        old = None  # an unreadable or outdated index is replaced
    n = store.count
    if old is not None and store.manifest["ann"].get("augment") != _augment_stamp(store):
        rebuild = True  # the index encodes other vectors than searches now compare
    if not store.manifest.get("ann") and n < EXACT_BELOW and not force:
        return BuildReport("none", n, None, None, time.perf_counter() - t0, False)
    old_codec = re.sub(r"IVF\d+,", "", old.spec.factory) if old else None
    codec = codec or old_codec or DEFAULT_CODEC
    if nprobe is None and old is not None and codec == old_codec:
        nprobe = old.spec.nprobe
    spec = choose_spec(n, fit_codec(codec, store.dim), nprobe)
    first, stage = _split_refine(spec.factory)
    factory_index(store.dim, first)  # a codec FAISS rejects is refused before any work
    if stage:
        factory_index(store.dim, codec_name(stage))
    if old is not None and not rebuild and old.spec.is_ivf == spec.is_ivf:
        if old.count == n:
            if not keep_full:
                _drop_full(store, n)
            return BuildReport("up to date", n, old.spec.factory, old.code_bytes,
                               time.perf_counter() - t0, store.full_from > 0)
        spec, start, action = old.spec, old.count, "extended"
        writer = Writer.extend(store, old)
    else:
        if store.full_from > 0:
            raise StoreError(f"{store.path}: full-precision fingerprints of tiles below "
                             f"{store.full_from} were dropped, so the index cannot be "
                             "retrained; extend it instead, or re-index into a store built "
                             "with --keep-full")
        writer, start, action = _train(store, spec, seed), 0, "built"
    _add(store, writer, start, n)
    writer.commit(n)
    if not keep_full:
        _drop_full(store, n)
    return BuildReport(action, n, spec.factory, writer.code_bytes,
                       time.perf_counter() - t0, not keep_full or store.full_from > 0)


def _drop_full(store: Store, n: int) -> None:
    """Keep only codes for tiles below `n`: the full vectors and any augmented ones go."""
    store.drop_full_before(n)
    augment.drop_file(store)


def _augment_stamp(store: Store) -> float | None:
    """Which augmentation (if any) the vectors searches compare come from."""
    e = augment.entry(store)
    return float(e["built"]) if e else None


def _train(store: Store, spec: IndexSpec, seed: int) -> Writer:
    n = store.count
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, min(n, TRAIN_MAX), replace=False))
    writer = Writer.new(store, spec)
    writer.train(augment.unit(augment.rows(store, pick)))
    return writer


def train(index: Any, x: np.ndarray) -> None:
    """Train `index` on unit vectors `x`, fitting its PCA (if any) about the origin.

    FAISS's PCA centres the data; a following ``L2norm`` would then normalise the centred
    projections, whose cosines are not the tiles' (recall@10 through the index on the orthos:
    0.847 instead of 0.967, benchmarks/bench_codecs.py). Fitted on `x` and `-x`, the mean is
    zero: the components are those that keep most of the unit vectors themselves, and
    normalising ranks by their cosine."""
    faiss = _faiss()
    pca = _first_pca(index, faiss)
    if pca is not None and not pca.is_trained:
        pca.train(np.concatenate([x, -x]))
    with ann_gpu.kmeans_on_gpus(index, faiss):
        index.train(x)


def _first_pca(index: Any, faiss: Any) -> Any:
    """The PCA at the head of `index`'s transform chain (under a refine stage), or None."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if isinstance(index, faiss.IndexPreTransform) and index.chain.size():
        first = faiss.downcast_VectorTransform(index.chain.at(0))
        if isinstance(first, faiss.PCAMatrix):
            return first
    return None


def new_index(dim: int, spec: IndexSpec) -> Any:
    """An untrained FAISS index for `spec` over unit vectors, compared by squared L2.

    On unit vectors L2 ranks as cosine does, and unlike inner product it is unbiased after
    the PCA's centring (<q - mu, x - mu> is not <q, x> up to a constant; |q - x| is)."""
    return factory_index(dim, spec.factory)


def factory_index(dim: int, factory: str) -> Any:
    """`faiss.index_factory` over squared L2; QueryError naming a string FAISS rejects."""
    faiss = _faiss()
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_L2)
    except RuntimeError as exc:
        raise QueryError(f"codec {factory!r} is not a FAISS index factory string for {dim}-d "
                         f"vectors ({_last_line(exc)}); try the default, {DEFAULT_CODEC}") \
            from exc


def _add(store: Store, writer: Writer, start: int, stop: int) -> None:
    for lo in range(start, stop, _ADD_CHUNK):
        hi = min(stop, lo + _ADD_CHUNK)
        for _, vecs, _ in augment.segments(store, lo, hi):  # what searches compare
            writer.add(augment.unit(vecs))


class Writer:
    """An index being filled: the FAISS index in memory and, for a refining codec, the finer
    codes streamed to their own file (`tilesearch.refine.CodeFile`), never all in RAM."""

    def __init__(self, store: Store, spec: IndexSpec, index: Any, fine: Any = None,
                 files: tuple[str, str] | None = None, start: int = 0,
                 stride: int = 0) -> None:
        self.store, self.spec, self.index, self.fine, self.files = store, spec, index, fine, files
        self.stride = stride  # bytes a row of the code file
        self.codes = CodeFile(fine, store.path / files[1], start, stride) if files else None

    @classmethod
    def new(cls, store: Store, spec: IndexSpec) -> Writer:
        """An untrained index for `spec` (`train` it, then `add`)."""
        first, stage = _split_refine(spec.factory)
        index = new_index(store.dim, IndexSpec(first, spec.nprobe, spec.metric))
        if not stage:
            return cls(store, spec, index)
        fine = factory_index(store.dim, codec_name(stage))
        (store.path / "ann").mkdir(exist_ok=True)
        stamp = int(time.time() * 1000)
        return cls(store, spec, index, fine, (f"ann/fine-{stamp}.faiss", f"ann/fine-{stamp}.codes"),
                   stride=row_stride(int(fine.sa_code_size())))

    @classmethod
    def extend(cls, store: Store, old: AnnIndex) -> Writer:
        """The store's index, to add the tiles from ``old.count`` on."""
        faiss = _faiss()
        index = faiss.read_index(str(old.path))  # a writable copy of the mmap-ed one
        fine = store.manifest["ann"].get("fine")
        if not fine:  # one FAISS index (an IndexRefine of earlier versions included)
            return cls(store, old.spec, index)
        codec = faiss.read_index(str(store.path / fine["codec"]))
        stride = int(fine.get("stride") or codec.sa_code_size())  # packed before strides
        return cls(store, old.spec, index, codec, (fine["codec"], fine["codes"]), old.count,
                   stride)

    @property
    def code_bytes(self) -> int:
        fine = int(self.fine.sa_code_size()) if self.fine is not None else 0
        return int(self.index.sa_code_size()) + fine

    def train(self, x: np.ndarray) -> None:
        """Train both stages on unit vectors `x` (see `train`)."""
        train(self.index, x)
        if self.fine is not None:
            self.fine.train(x)

    def add(self, x: np.ndarray) -> None:
        """Encode unit vectors `x` as the next tiles."""
        self.index.add(x)
        if self.codes is not None:
            self.codes.add(x)

    def commit(self, count: int) -> None:
        """Write the index durably, name it in the manifest, delete the one it replaces."""
        faiss, store = _faiss(), self.store
        (store.path / "ann").mkdir(exist_ok=True)
        entry: dict[str, Any] = {}
        if self.codes is not None and self.files is not None:
            self.codes.close()
            if not (store.path / self.files[0]).exists():
                _write(faiss, self.fine, store.path / self.files[0])
            entry["fine"] = {"codec": self.files[0], "codes": self.files[1],
                             "stride": self.stride}
        name = f"ann/index-{count}-{int(time.time() * 1000)}.faiss"
        _write(faiss, self.index, store.path / name)
        store.set_manifest("ann", {"file": name, "space": SPACE, "factory": self.spec.factory,
                                   "nprobe": self.spec.nprobe, "metric": self.spec.metric,
                                   "count": count, "code_bytes": self.code_bytes,
                                   "built": time.time(), "augment": _augment_stamp(store),
                                   **entry})
        keep = {name, *(self.files or ())}  # the index replaced, and any a crash left behind
        for f in (store.path / "ann").iterdir():
            if f"ann/{f.name}" not in keep:
                f.unlink(missing_ok=True)


def _write(faiss: Any, index: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


_LOADED: weakref.WeakKeyDictionary[Store, tuple[str, AnnIndex | None]] = \
    weakref.WeakKeyDictionary()


def cached(store: Store) -> AnnIndex | None:
    """`load(store)`, kept with the open store until its manifest names another index."""
    entry = store.manifest.get("ann") or {}
    key = str(entry.get("file", ""))
    hit = _LOADED.get(store)
    if hit is None or hit[0] != key:
        hit = (key, load(store))
        _LOADED[store] = hit
    return hit[1]
