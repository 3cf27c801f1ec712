"""One Web Mercator map of every georeferenced image of a store: their footprints, map tiles
cut from all of them (rio-tiler, through `tilesearch.raster`), and the image under a point.

Where images overlap, the one indexed first is drawn on top (each pixel from the first image
valid there), as `tile_under` picks it for a click. Zooms run to the finest image's native
resolution (`raster.native_zoom`); coarse zooms read the rasters' overviews, so an image
without any (see `tilesearch overviews`) is slow to draw zoomed out.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import geo
from tilesearch.errors import OptionError
from tilesearch.raster import native_zoom, open_image, overview_source, read_mercator
from tilesearch.records import ImageInfo
from tilesearch.web.imagery import TILE, TileOutside, encode_png

ZOOM_BEYOND = 2
"""Zooms the page magnifies past the imagery's finest (overlays are drawn there too)."""
_TEMPLATE = re.compile(r"^https?://[^\s]+$")


def check_basemap(url: str | None) -> str | None:
    """An XYZ tile URL template (https://.../{z}/{x}/{y}.png) as given, or OptionError."""
    if not url:
        return None
    if not _TEMPLATE.match(url) or not all(k in url for k in ("{z}", "{x}", "{y}")):
        raise OptionError(f"--basemap {url!r}: give an http(s) XYZ tile URL template holding "
                          "{z}, {x} and {y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    return url


@dataclass(frozen=True)
class Placed:
    """A georeferenced image on the map: its lon/lat outline and bounding box."""

    image_id: int
    info: ImageInfo
    ring: list[tuple[float, float]]
    bbox: tuple[float, float, float, float]


def place(image_id: int, info: ImageInfo) -> Placed:
    """The image's outline: its edges at up to 8 points a side, so a warped outline bends."""
    assert info.crs is not None and info.transform is not None
    steps = np.linspace(0.0, 1.0, 9)
    w, h = info.width, info.height
    cols = np.concatenate([steps * w, np.full(9, w), (1 - steps) * w, np.zeros(9)])
    rows = np.concatenate([np.zeros(9), steps * h, np.full(9, h), (1 - steps) * h])
    a, b, c, d, e, f = info.transform
    xs, ys = a * cols + b * rows + c, d * cols + e * rows + f
    lon, lat = geo.to_lonlat(info.crs, list(xs), list(ys))
    ring = [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]
    bbox = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    return Placed(image_id, info, [*ring, ring[0]], bbox)


def tile_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """West, south, east, north of Web Mercator tile (z, x, y)."""
    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


class GeoMap:
    """The store's georeferenced images on one Web Mercator map."""

    def __init__(self, images: dict[int, ImageInfo], overview_dir: str | Path | None) -> None:
        self.placed = [place(i, info) for i, info in sorted(images.items())
                       if info.georeferenced]
        self.overview_dir = overview_dir
        lat = (self.bounds[1] + self.bounds[3]) / 2 if self.placed else 0.0
        finest = min((p.info.gsd for p in self.placed if p.info.gsd), default=None)
        self.max_zoom = native_zoom(finest, lat) if finest else 18

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """West, south, east, north of all the images (0s when there is none)."""
        if not self.placed:
            return (0.0, 0.0, 0.0, 0.0)
        boxes = np.array([p.bbox for p in self.placed])
        return (float(boxes[:, 0].min()), float(boxes[:, 1].min()),
                float(boxes[:, 2].max()), float(boxes[:, 3].max()))

    def summary(self) -> dict[str, Any]:
        """What the page needs to draw the map: bounds, zooms and the footprints layer."""
        features = [{"type": "Feature", "id": p.image_id,
                     "properties": {"image_id": p.image_id, "name": Path(p.info.path).name,
                                    "crs": geo.short_crs(p.info.crs), "gsd": p.info.gsd},
                     "geometry": {"type": "Polygon", "coordinates": [p.ring]}}
                    for p in self.placed]
        return {"bounds": list(self.bounds), "max_zoom": self.max_zoom,
                "tiles": f"/api/map/tiles/{{z}}/{{x}}/{{y}}.png?v={self.version}",
                "footprints": {"type": "FeatureCollection", "features": features}}

    @property
    def version(self) -> str:
        """Changes with the set of images drawn (a store only gains images): what keeps a
        browser from showing a cached map tile drawn before an image was added."""
        ids = ",".join(str(p.image_id) for p in self.placed)
        return hashlib.sha1(ids.encode()).hexdigest()[:10]

    def under(self, z: int, x: int, y: int) -> list[Placed]:
        """The images whose bounding boxes meet map tile (z, x, y), first drawn first (none
        in a gap between images); TileOutside where the tile misses `bounds` or is beyond
        the zooms."""
        if not 0 <= z <= self.max_zoom + ZOOM_BEYOND or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise TileOutside(f"map tile {z}/{x}/{y} is outside zoom 0..{self.max_zoom} or "
                              "the world")
        w, s, e, n = tile_lonlat(z, x, y)
        west, south, east, north = self.bounds
        if not self.placed or not (west < e and east > w and south < n and north > s):
            raise TileOutside(f"map tile {z}/{x}/{y} shows no image of the store")
        return [p for p in self.placed
                if p.bbox[0] < e and p.bbox[2] > w and p.bbox[1] < n and p.bbox[3] > s]

    def render(self, z: int, x: int, y: int) -> bytes:
        """PNG (RGBA) of map tile (z, x, y) over every image under it (`under`); clear
        where none is."""
        if z > self.max_zoom:
            raise TileOutside(f"map tile {z}/{x}/{y} is beyond the imagery's zoom "
                              f"{self.max_zoom} (the page magnifies that zoom's tiles)")
        under = self.under(z, x, y)
        rgba = np.zeros((TILE, TILE, 4), np.uint8)
        filled = np.zeros((TILE, TILE), bool)
        for p in under:
            with open_image(overview_source(p.info.path, self.overview_dir),
                            bands=p.info.bands, stretch=p.info.stretch) as src:
                got = read_mercator(src, x, y, z, TILE)
            if got is None:
                continue
            pixels, valid = got
            take = valid & ~filled
            rgba[take, :3] = pixels[take]
            rgba[take, 3] = 255
            filled |= take
            if filled.all():
                break
        return encode_png(rgba)

    def images_under(self, lon: float, lat: float) -> list[tuple[int, float, float]]:
        """The images holding point (lon, lat), first drawn first, each with the point's
        pixel (col, row) there."""
        found = []
        for p in self.placed:
            if not (p.bbox[0] <= lon <= p.bbox[2] and p.bbox[1] <= lat <= p.bbox[3]):
                continue
            assert p.info.crs is not None and p.info.transform is not None
            col, row = geo.lonlat_to_pixel(p.info.crs, p.info.transform, lon, lat)
            if 0 <= col < p.info.width and 0 <= row < p.info.height:
                found.append((p.image_id, col, row))
        return found
