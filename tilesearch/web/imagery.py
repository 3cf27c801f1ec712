"""Map tiles of an indexed image: a pixel-space pyramid cut on demand from the source raster.

Zoom ``zmax`` shows the image at full resolution; each zoom below halves it. Tile (z, x, y) is
256 x 256 px on screen and covers ``256 * 2**(zmax - z)`` image pixels on each side. Reduced
reads come from the raster's own overviews (``<image>.ovr`` or a VRT with overviews in the
store's overview folder, see `tilesearch overviews`); for an image without overviews, coarse zooms
are cut from an in-memory preview read once (slow on a big image: build its overviews).
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tilesearch.raster import RasterSource, open_image, overview_source
from tilesearch.records import ImageInfo
from tilesearch.tiling import Window

TILE = 256
PREVIEW_MAX = 4096
"""Long side, in px, of the in-memory preview of an image without overviews."""


class TileOutside(LookupError):
    """The requested map tile lies outside the image or its zoom range."""


def max_zoom(width: int, height: int) -> int:
    """The zoom at which one screen pixel is one image pixel."""
    return max(0, math.ceil(math.log2(max(width, height, 1) / TILE)))


def tile_window(info: ImageInfo, z: int, x: int, y: int) -> tuple[Window, int]:
    """The image window of map tile (z, x, y) clipped to the image, and its decimation."""
    zmax = max_zoom(info.width, info.height)
    if not 0 <= z <= zmax or x < 0 or y < 0:
        raise TileOutside(f"zoom {z} is outside 0..{zmax} or the tile index is negative")
    scale = 2 ** (zmax - z)
    span = TILE * scale
    col, row = x * span, y * span
    if col >= info.width or row >= info.height:
        raise TileOutside(f"tile {z}/{x}/{y} lies outside the image")
    return Window(col, row, min(span, info.width - col), min(span, info.height - row)), scale


@dataclass
class Preview:
    """The whole image decimated by `factor` (pixels and validity)."""

    factor: int
    pixels: np.ndarray
    valid: np.ndarray


class LRU:
    """A small thread-safe least-recently-used cache of values by key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> object | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: object, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class Pyramid:
    """Renders map tiles of images as PNG bytes, with previews for images lacking overviews."""

    def __init__(self, overview_dir: str | Path | None = None, previews: int = 4) -> None:
        self.overview_dir = overview_dir
        self._previews = LRU(previews)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def render(self, info: ImageInfo, z: int, x: int, y: int) -> bytes:
        """PNG (RGBA, 256 x 256) of map tile (z, x, y); invalid and outside pixels clear."""
        window, scale = tile_window(info, z, x, y)
        ow, oh = max(1, round(window.width / scale)), max(1, round(window.height / scale))
        preview = self._preview(info) if scale >= 4 else None
        if preview is not None and scale >= preview.factor:
            pixels, valid = _cut(preview, window, ow, oh)
        else:
            with self._open(info) as src:
                pixels, valid = src.read_scaled(window, ow, oh)
        rgba = np.zeros((TILE, TILE, 4), np.uint8)
        rgba[:oh, :ow, :3] = pixels
        rgba[:oh, :ow, 3] = np.where(valid, 255, 0)
        return encode_png(rgba)

    def _open(self, info: ImageInfo) -> RasterSource:
        """The image, or its VRT with overviews in the overview folder."""
        return open_image(overview_source(info.path, self.overview_dir), bands=info.bands,
                          stretch=info.stretch)

    def _preview(self, info: ImageInfo) -> Preview | None:
        """The image's preview, read once; None when the raster has overviews of its own."""
        with self._guard:
            lock = self._locks.setdefault(info.path, threading.Lock())
        with lock:
            cached = self._previews.get(info.path)
            if isinstance(cached, Preview) or cached is False:
                return cached or None
            with self._open(info) as src:
                if src.overview_factors:
                    self._previews.put(info.path, False)
                    return None
                factor = 4
                while max(info.width, info.height) / factor > PREVIEW_MAX:
                    factor *= 2
                w = max(1, info.width // factor)
                h = max(1, info.height // factor)
                pixels, valid = src.read_scaled(Window(0, 0, info.width, info.height), w, h)
            preview = Preview(factor, pixels, valid)
            self._previews.put(info.path, preview)
            return preview


def _cut(p: Preview, window: Window, ow: int, oh: int) -> tuple[np.ndarray, np.ndarray]:
    """`window` (image pixels) cut from a preview and resized to ow x oh."""
    h, w = p.valid.shape
    c0, r0 = min(w - 1, window.col_off // p.factor), min(h - 1, window.row_off // p.factor)
    c1 = max(c0 + 1, min(w, math.ceil(window.col_end / p.factor)))
    r1 = max(r0 + 1, min(h, math.ceil(window.row_end / p.factor)))
    img = Image.fromarray(np.ascontiguousarray(p.pixels[r0:r1, c0:c1]), "RGB")
    mask = Image.fromarray(p.valid[r0:r1, c0:c1].astype(np.uint8) * 255, "L")
    img = img.resize((ow, oh), Image.Resampling.BILINEAR)
    mask = mask.resize((ow, oh), Image.Resampling.NEAREST)
    return np.asarray(img), np.asarray(mask) > 127


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3 or 4) uint8 array (fast compression)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
