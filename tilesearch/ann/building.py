"""Building a search index from a store's own fingerprints, and extending it with new tiles."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.ann import gpu
from tilesearch.ann import spec as tuning
from tilesearch.ann.augment import drop_file
from tilesearch.ann.index import AnnIndex, load
from tilesearch.ann.refine import CodeFile, codec_name, row_stride
from tilesearch.ann.spec import (
    DEFAULT_CODEC,
    MANIFEST_KEY,
    FineFiles,
    IndexEntry,
    IndexSpec,
    _faiss,
    _last_line,
    _split_refine,
    choose_spec,
    fit_codec,
)
from tilesearch.errors import QueryError, StoreError
from tilesearch.store import Store, unit


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
    entry = IndexEntry.of(store) if old is not None else None
    if entry is not None and entry.augment != _augment_stamp(store):
        rebuild = True  # the index encodes other vectors than searches now compare
    if not store.manifest.get(MANIFEST_KEY) and n < tuning.EXACT_BELOW and not force:
        return BuildReport("none", n, None, None, time.perf_counter() - t0, False)
    spec = _spec(store, old, codec, nprobe)
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


def _spec(store: Store, old: AnnIndex | None, codec: str | None,
          nprobe: int | None) -> IndexSpec:
    """The index to build: `codec` (else the old index's, else the default) and `nprobe`
    (else the old one's when the codec stays); a codec FAISS rejects is refused here, before
    any work."""
    old_codec = re.sub(r"IVF\d+,", "", old.spec.factory) if old else None
    codec = codec or old_codec or DEFAULT_CODEC
    if nprobe is None and old is not None and codec == old_codec:
        nprobe = old.spec.nprobe
    spec = choose_spec(store.count, fit_codec(codec, store.dim), nprobe)
    first, stage = _split_refine(spec.factory)
    factory_index(store.dim, first)
    if stage:
        factory_index(store.dim, codec_name(stage))
    return spec


def _drop_full(store: Store, n: int) -> None:
    """Keep only codes for tiles below `n`: the full vectors and any augmented ones go."""
    store.drop_full_before(n)
    drop_file(store)


def _augment_stamp(store: Store) -> float | None:
    """Which augmentation (if any) the vectors searches compare come from."""
    e = store.augmentation
    return float(e["built"]) if e else None


def _train(store: Store, spec: IndexSpec, seed: int) -> Writer:
    n = store.count
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, min(n, tuning.TRAIN_MAX), replace=False))
    writer = Writer.new(store, spec)
    writer.train(unit(store.search_rows(pick)))
    return writer


def train(index: Any, x: np.ndarray) -> None:
    """Train `index` on unit vectors `x`, fitting its PCA (if any) about the origin.

    FAISS's PCA centres the data; a following ``L2norm`` would then normalise the centred
    projections, whose cosines are not the tiles' (recall@10 through the index on the orthos:
    0.847 instead of 0.967, benchmarks/targets/codecs.py). Fitted on `x` and `-x`, the mean is
    zero: the components are those that keep most of the unit vectors themselves, and
    normalising ranks by their cosine."""
    faiss = _faiss()
    pca = _first_pca(index, faiss)
    if pca is not None and not pca.is_trained:
        pca.train(np.concatenate([x, -x]))
    with gpu.kmeans_on_gpus(index, faiss):
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
    for lo in range(start, stop, tuning._ADD_CHUNK):
        hi = min(stop, lo + tuning._ADD_CHUNK)
        for _, vecs, _ in store.search_segments(lo, hi):  # what searches compare
            writer.add(unit(vecs))


class Writer:
    """An index being filled: the FAISS index in memory and, for a refining codec, the finer
    codes streamed to their own file (`refine.CodeFile`), never all in RAM."""

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
        entry = IndexEntry.of(store)
        fine = entry.fine if entry else None
        if fine is None:
            return cls(store, old.spec, index)
        codec = faiss.read_index(str(store.path / fine.codec))
        return cls(store, old.spec, index, codec, (fine.codec, fine.codes), old.count,
                   fine.stride)

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
        fine = None
        if self.codes is not None and self.files is not None:
            self.codes.close()
            if not (store.path / self.files[0]).exists():
                _write(faiss, self.fine, store.path / self.files[0])
            fine = FineFiles(self.files[0], self.files[1], self.stride)
        name = f"ann/index-{count}-{int(time.time() * 1000)}.faiss"
        _write(faiss, self.index, store.path / name)
        entry = IndexEntry(file=name, factory=self.spec.factory, nprobe=self.spec.nprobe,
                           metric=self.spec.metric, count=count, code_bytes=self.code_bytes,
                           built=time.time(), augment=_augment_stamp(store), fine=fine)
        store.set_manifest(MANIFEST_KEY, entry.to_dict())
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
