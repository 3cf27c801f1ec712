"""Web Mercator map tiles of an image (rio-tiler): what a geographic web map draws.

rio-tiler warps the part of the raster under map tile (z, x, y) into EPSG:3857, reading from
the raster's overviews at coarse zooms, with its mask; this module turns that into the same
RGB8 pixels and validity the rest of tilesearch reads (band choice, 16-bit stretch, zero as
nodata where the raster declares no mask).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tilesearch.errors import MissingDependencyError
from tilesearch.raster.reader import RasterSource, _to_rgb8

EARTH_CIRCUMFERENCE = 40_075_016.686
"""Metres around the equator of the Web Mercator sphere."""
TILE = 256
MAX_ZOOM = 24


def _rio_tiler() -> Any:
    try:
        from rio_tiler.io import Reader
    except ImportError as exc:
        raise MissingDependencyError("rio-tiler", "web", "the geographic map") from exc
    return Reader


def native_zoom(gsd: float, lat: float) -> int:
    """The Web Mercator zoom whose pixel is at most `gsd` metres on the ground at `lat`."""
    metres_z0 = EARTH_CIRCUMFERENCE * math.cos(math.radians(lat)) / TILE
    return max(0, min(MAX_ZOOM, math.ceil(math.log2(metres_z0 / max(gsd, 1e-6)))))


def read_mercator(src: RasterSource, x: int, y: int, z: int, size: int = TILE
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixels (size, size, 3) uint8 and validity of map tile (z, x, y) of a georeferenced
    image; None where the tile misses the image."""
    reader_cls = _rio_tiler()
    info = src.info
    with warnings.catch_warnings():  # "no overviews": `tilesearch overviews` is the answer
        warnings.simplefilter("ignore")
        reader = reader_cls(None, dataset=src.dataset)
    with reader:
        if not reader.tile_exists(x, y, z):
            return None
        img = src.guarded(lambda: reader.tile(
            x, y, z, tilesize=size, indexes=list(info.bands),
            reproject_method="bilinear", resampling_method="average"))
    data = np.asarray(img.data)
    valid = np.asarray(img.mask) > 0
    if info.mask == "zero":
        valid &= (data != 0).any(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    if not valid.any():
        return None
    return _to_rgb8(data, info.stretch), valid


HALF_WORLD = EARTH_CIRCUMFERENCE / 2
"""Metres from the Web Mercator origin to the edge of the world."""


def mercator_bounds(x: int, y: int, z: int) -> tuple[float, float, float, float]:
    """Left, bottom, right, top of map tile (z, x, y) in EPSG:3857 metres."""
    side = EARTH_CIRCUMFERENCE / 2 ** z
    left, top = -HALF_WORLD + x * side, HALF_WORLD - y * side
    return left, top - side, left + side, top


def warp_grid(grid: np.ndarray, crs: str, transform: tuple[float, ...], x: int, y: int, z: int,
              size: int = TILE, nodata: float = -1.0) -> np.ndarray:
    """A grid of values over an image (`transform`: its cells' georeferencing) warped into
    map tile (z, x, y), nearest cell; `nodata` where no cell lies."""
    from affine import Affine
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject

    out = np.full((size, size), nodata, np.float32)
    reproject(np.ascontiguousarray(grid, np.float32), out, src_transform=Affine(*transform[:6]),
              src_crs=crs, src_nodata=nodata, dst_transform=from_bounds(
                  *mercator_bounds(x, y, z), size, size), dst_crs="EPSG:3857",
              dst_nodata=nodata, resampling=Resampling.nearest)
    return out
