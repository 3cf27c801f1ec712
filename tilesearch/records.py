"""The self-describing records that travel between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from tilesearch.tiling import Window

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageInfo:
    """What the pipeline knows about one source image, read from its header."""

    path: str
    width: int
    height: int
    band_count: int
    dtype: str
    bands: tuple[int, ...]
    crs: str | None
    transform: tuple[float, float, float, float, float, float] | None
    mask: str
    size_bytes: int
    mtime: float
    stretch: tuple[tuple[float, float], ...] | None = None
    item: str | None = None
    """The id of the STAC item the image is an asset of (None when not from STAC)."""
    gsd: float | None = None
    """Metres on the ground per pixel: measured from the georeferencing, or as given by
    `--pixel-size` for an image without; None when unknown."""

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "band_count": self.band_count,
            "dtype": self.dtype,
            "bands": list(self.bands),
            "crs": self.crs,
            "transform": list(self.transform) if self.transform else None,
            "mask": self.mask,
            "size_bytes": self.size_bytes,
            "mtime": self.mtime,
            "stretch": [list(s) for s in self.stretch] if self.stretch else None,
            "item": self.item,
            "gsd": self.gsd,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageInfo:
        return cls(
            path=d["path"],
            width=int(d["width"]),
            height=int(d["height"]),
            band_count=int(d["band_count"]),
            dtype=d["dtype"],
            bands=tuple(d["bands"]),
            crs=d["crs"],
            transform=tuple(d["transform"]) if d["transform"] else None,
            mask=d["mask"],
            size_bytes=int(d["size_bytes"]),
            mtime=float(d["mtime"]),
            stretch=_pairs(d.get("stretch")),
            item=d.get("item"),
            gsd=float(d["gsd"]) if d.get("gsd") is not None else None,
        )


def _pairs(values: Any) -> tuple[tuple[float, float], ...] | None:
    return tuple((float(a), float(b)) for a, b in values) if values else None


@dataclass
class Tile:
    """One tile: its pixels and validity mask, where it lies in its image and on the map."""

    source: str
    window: Window
    pixels: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    crs: str | None = None
    bounds: Bounds | None = None
    lonlat: tuple[float, float] | None = None
    lonlat_bounds: Bounds | None = None

    @cached_property
    def valid_fraction(self) -> float:
        return float(np.count_nonzero(self.valid)) / self.valid.size if self.valid.size else 0.0


class Footprint(NamedTuple):
    """Where a stored tile lies, and nothing else: what overlap tests need."""

    tile_id: int
    image_id: int
    window: Window


@dataclass(frozen=True)
class TileMeta:
    """A stored tile without pixels: what search results and exports carry."""

    tile_id: int
    image_id: int
    source: str
    window: Window
    valid_fraction: float
    crs: str | None
    bounds: Bounds | None
    lonlat: tuple[float, float] | None
    lonlat_bounds: Bounds | None

    def to_dict(self) -> dict[str, Any]:
        w = self.window
        return {
            "tile_id": self.tile_id,
            "source": self.source,
            "window": {"col_off": w.col_off, "row_off": w.row_off, "width": w.width,
                       "height": w.height},
            "valid_fraction": round(self.valid_fraction, 4),
            "crs": self.crs,
            "bounds": list(self.bounds) if self.bounds else None,
            "lon": self.lonlat[0] if self.lonlat else None,
            "lat": self.lonlat[1] if self.lonlat else None,
        }
