"""What a search index is: its FAISS factory string, lists visited, the sizes that choose it."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from tilesearch.errors import MissingDependencyError, StoreError

EXACT_BELOW = 20_000
"""Stores smaller than this are searched exactly (a few ms); `build` makes no index."""


IVF_ABOVE = 50_000
"""From this size on the codes sit in an inverted file; below it they are scanned in full."""


DEFAULT_CODEC = "PCA256,L2norm,SQ6"
"""Codec (FAISS factory string, without the IVF part) used unless one is given: 256
principal components fitted about the origin (see `train`), re-normalised, 6 bits each
(192 bytes a tile). Chosen as the 192-byte codec that ranks best on real fingerprints, codes
alone; ``PCA256,L2norm,SQ8`` (256 bytes) keeps more recall when a million crowded tiles are
searched from their codes alone (docs/benchmarks/search-index.md)."""


NPROBE = 16
"""Inverted lists visited per query by default: the fewest past which recall@10 no longer
rises, at every scale measured (docs/benchmarks/search-index.md); each list more costs
time."""


RERANK_MIN = 128
"""With full vectors kept, at least this many candidates from the codes are re-ranked exactly.
Each costs a read of its full vector, so fewer is faster; this many keep recall@10 at its
ceiling (docs/benchmarks/search-index.md)."""


RERANK_FACTOR = 1.5
"""With full vectors kept, a search for m tiles re-ranks ``max(RERANK_MIN, 1.5 m)``
candidates: with `LARGE_M`, what keeps recall@1000 near 1
(docs/benchmarks/search-index.md)."""


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
true top 10 among `REFINE_MIN` candidates, and recall@10 no longer rises past 8 lists at the
scales measured, while each list more costs time (docs/benchmarks/search-index.md)."""


REFINE_MIN = 32
"""At least this many candidates are ranked by a refining codec's finer codes. Each costs one
read from disk when its code is not cached, so fewer is faster; this many rank as well as
eight times more at 10 M tiles (docs/benchmarks/search-index.md). A first stage much coarser
than the default codec's needs more."""


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


MANIFEST_KEY = "ann"
"""The manifest entry naming the store's search index."""


@dataclass(frozen=True)
class FineFiles:
    """A refining codec's second stage: its trained codec and its code file (rows `stride`
    bytes apart)."""

    codec: str
    codes: str
    stride: int


@dataclass(frozen=True)
class IndexEntry:
    """The manifest's record of a built search index, typed (`of` reads and checks it)."""

    file: str
    factory: str
    nprobe: int
    metric: str
    count: int
    code_bytes: int
    space: str = SPACE
    built: float = 0.0
    augment: float | None = None
    fine: FineFiles | None = None

    @classmethod
    def of(cls, store: Any) -> IndexEntry | None:
        """The entry of `store`'s manifest, or None; StoreError (rebuild it) when a field is
        missing or of the wrong kind, or the index predates the current layout."""
        raw = store.manifest.get(MANIFEST_KEY)
        if not raw:
            return None
        hint = f"rebuild it with 'tilesearch build-index {store.path} --rebuild'"
        if raw.get("space") != SPACE:
            raise StoreError(f"{store.path}: its search index was made by an older "
                             f"tilesearch; {hint}")
        fine = raw.get("fine")
        if fine and not fine.get("stride"):
            raise StoreError(f"{store.path}: its search index was written by a pre-release "
                             f"tilesearch in a layout no longer read; {hint}")
        try:
            return cls(file=str(raw["file"]), factory=str(raw["factory"]),
                       nprobe=int(raw["nprobe"]), metric=str(raw["metric"]),
                       count=int(raw["count"]), code_bytes=int(raw["code_bytes"]),
                       built=float(raw.get("built") or 0.0), augment=raw.get("augment"),
                       fine=FineFiles(str(fine["codec"]), str(fine["codes"]),
                                      int(fine["stride"])) if fine else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{store.path}: the manifest's search-index entry is damaged "
                             f"({exc!r}); {hint}") from exc

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.fine is None:
            out.pop("fine")
        return out
