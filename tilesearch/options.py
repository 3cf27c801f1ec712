"""Options as typed records: every default in one place, each record frozen and validated once
when it is made. The CLI builds its click options from these constants, the web app builds
the same records from its request schemas, and the API takes a record (`options=`) or its
fields as keywords."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from tilesearch.errors import OptionError

TILE_SIZE = 256
"""Tile side in pixels."""
STRIDE = 128
"""Pixels between neighbouring tiles: each pixel lies in up to four tiles."""
MAX_INVALID = 0.5
"""Tiles with a larger share of invalid (nodata) pixels are dropped."""
CPU_BATCH = 64
"""Tiles per inference call on a CPU (a GPU takes `models.GPU_BATCH`)."""
K = 10
"""Hits a search returns."""
METRIC: Final = "cosine"
"""Cosine ranks better than euclidean on every measure taken (docs/quality.md)."""
METRICS = ("euclidean", "cosine")
ALPHA = 3.0
"""Weight of a neighbour in query expansion and augmentation: its similarity to this power."""
GSD: Final = "auto"
"""A new store's ground resolution: the first georeferenced image's (docs/inputs.md)."""
GSD_CHOICES = ("auto", "native")
"""Besides metres a pixel: `auto` as above, `native` every image at its own resolution."""
GSD_RANGE = (0.001, 1000.0)
"""Ground resolutions accepted, metres a pixel (1 mm to 1 km)."""
MAX_UPSAMPLE = 2.0
"""Images up to this many times coarser than the store's ground resolution are upsampled to
it; coarser ones are skipped (their tiles would be mostly blur). Figures:
docs/benchmarks/scale.md."""
RUNTIMES = ("auto", "openvino", "onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")
CLUSTERS = ("auto", "local", "ray")

T = TypeVar("T")


def _need(ok: bool, name: str, value: Any, rule: str) -> None:
    if not ok:
        raise OptionError(f"{name} must be {rule}, not {value!r}")


def _positive(name: str, value: int | None) -> None:
    _need(value is None or (isinstance(value, int) and value >= 1), name, value,
          "a whole number of 1 or more")


def with_changes(record: T, changes: dict[str, Any]) -> T:
    """`record` with `changes` applied (and validated); OptionError naming an unknown one."""
    fields = {f.name for f in dataclasses.fields(record)}  # type: ignore[arg-type]
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise OptionError(f"unknown option {unknown[0]!r}; options are "
                          f"{', '.join(sorted(fields))}")
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class IndexOptions:
    """How `index` reads images and fingerprints their tiles. None for model, recipe and the
    tiling means the store's when it exists, else the defaults above."""

    model: str | None = None
    weights: str | Path | None = None
    runtime: str = "auto"
    recipe: str | None = None
    tile_size: int | None = None
    stride: int | None = None
    max_invalid: float | None = None
    bands: tuple[int, ...] | None = None
    batch_size: int | None = None
    threads: int | None = None
    device: str = "auto"
    cluster: str = "auto"
    workers: int | None = None
    readers: int | None = None
    asset: str | None = None
    gsd: float | str | None = None
    """Metres a pixel every tile is read at, "auto" or "native"; None: the store's, else
    `GSD`."""
    pixel_size: float | None = None
    """Metres a pixel of images without georeferencing (else read at native resolution)."""
    max_upsample: float = MAX_UPSAMPLE
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "gsd", parse_gsd(self.gsd))
        _need(self.pixel_size is None or _in_gsd_range(self.pixel_size), "pixel_size",
              self.pixel_size, f"from {GSD_RANGE[0]} to {GSD_RANGE[1]} metres")
        _need(isinstance(self.max_upsample, int | float) and self.max_upsample >= 1.0,
              "max_upsample", self.max_upsample, "a number of 1 or more")
        for name in ("stride", "batch_size", "threads", "workers", "readers"):
            _positive(name, getattr(self, name))
        _need(self.tile_size is None or (isinstance(self.tile_size, int)
                                         and 32 <= self.tile_size <= 4096),
              "tile_size", self.tile_size, "from 32 to 4096 px")
        _need(self.max_invalid is None or 0.0 <= self.max_invalid <= 1.0, "max_invalid",
              self.max_invalid, "from 0 to 1")
        _need(self.runtime in RUNTIMES, "runtime", self.runtime, f"one of {RUNTIMES}")
        _need(self.device in DEVICES, "device", self.device, f"one of {DEVICES}")
        _need(self.cluster in CLUSTERS, "cluster", self.cluster, f"one of {CLUSTERS}")
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(self.bands))


def _in_gsd_range(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and GSD_RANGE[0] <= value <= GSD_RANGE[1])


def parse_gsd(value: float | str | None) -> float | str | None:
    """A ground resolution option as metres (float), "auto", "native" or None; OptionError
    for anything else or metres outside `GSD_RANGE`."""
    if value is None or value in GSD_CHOICES:
        return value
    try:
        metres = float(value)
    except (TypeError, ValueError):
        metres = math.nan
    _need(_in_gsd_range(metres), "gsd", value,
          f"metres a pixel from {GSD_RANGE[0]} to {GSD_RANGE[1]}, or one of {GSD_CHOICES}")
    return metres


@dataclass(frozen=True)
class SearchOptions:
    """How a search ranks: see `tilesearch.api.search` for what each one does."""

    k: int = K
    metric: str = METRIC
    exclude_self: bool = True
    suppress_overlaps: bool = True
    expand: int | None = None
    alpha: float = ALPHA
    offset: int = 0
    exact: bool = False
    raw_weight: float | None = None

    def __post_init__(self) -> None:
        _positive("k", self.k)
        _need(self.metric in METRICS, "metric", self.metric, f"one of {METRICS}")
        _need(isinstance(self.offset, int) and self.offset >= 0, "offset", self.offset,
              "a whole number of 0 or more")
        _need(self.expand is None or (isinstance(self.expand, int) and self.expand >= 0),
              "expand", self.expand, "a whole number of 0 or more")
        _need(math.isfinite(self.alpha) and self.alpha > 0, "alpha", self.alpha,
              "a number above 0")
        _need(self.raw_weight is None or 0.0 <= self.raw_weight <= 1.0, "raw_weight",
              self.raw_weight, "from 0 to 1")


@dataclass(frozen=True)
class BuildOptions:
    """How `build_index` builds the search index: see `tilesearch.api.build_index`."""

    codec: str | None = None
    nprobe: int | None = None
    rebuild: bool = False
    keep_full: bool = True
    force: bool = False
    augment: int | None = None
    alpha: float = ALPHA
    progress: bool = False

    def __post_init__(self) -> None:
        _positive("nprobe", self.nprobe)
        _need(self.codec is None or (isinstance(self.codec, str) and bool(self.codec.strip())),
              "codec", self.codec, "a FAISS index factory string")
        _need(self.augment is None or (isinstance(self.augment, int) and self.augment >= 0),
              "augment", self.augment, "a whole number of 0 (remove) or more")
        _need(math.isfinite(self.alpha) and self.alpha > 0, "alpha", self.alpha,
              "a number above 0")
