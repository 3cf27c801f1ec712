"""Map coordinates of pixel windows: affine arithmetic and CRS transforms, no file access."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from affine import Affine

from tilesearch.records import Bounds
from tilesearch.tiling import Window

GeoTransform = tuple[float, float, float, float, float, float]
METRES_PER_DEGREE = 6371008.8 * np.pi / 180
"""Metres in a degree of latitude (mean Earth radius): local equirectangular measures."""


def edge_metres(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """The ground length of a short lon/lat segment, on a local equirectangular view."""
    dx = (lon1 - lon0) * np.cos(np.radians((lat0 + lat1) / 2))
    return float(np.hypot(dx, lat1 - lat0) * METRES_PER_DEGREE)


def window_bounds(transform: GeoTransform, window: Window) -> Bounds:
    """(minx, miny, maxx, maxy) of a window in the image CRS."""
    aff = Affine(*transform)
    xs, ys = [], []
    for col, row in ((window.col_off, window.row_off), (window.col_end, window.row_end),
                     (window.col_off, window.row_end), (window.col_end, window.row_off)):
        x, y = aff @ (col, row)
        xs.append(x)
        ys.append(y)
    return (min(xs), min(ys), max(xs), max(ys))


def to_lonlat(crs: str, xs: Sequence[float], ys: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Transform points from `crs` to EPSG:4326 longitude and latitude."""
    from rasterio.warp import transform

    lon, lat = transform(crs, "EPSG:4326", list(xs), list(ys))
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def lonlat_to_pixel(crs: str, transform: GeoTransform, lon: float, lat: float
                    ) -> tuple[float, float]:
    """The pixel (col, row) of an image at longitude and latitude `lon`, `lat`."""
    from rasterio.warp import transform as warp

    xs, ys = warp("EPSG:4326", crs, [lon], [lat])
    col, row = ~Affine(*transform) * (xs[0], ys[0])
    return float(col), float(row)


def corners_lonlat(crs: str, transform: GeoTransform, boxes: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat (n, 5) of pixel boxes (n, 4: col, row, width, height): each box's centre,
    then its corners top left, top right, bottom right, bottom left; one CRS transform."""
    col, row, w, h = (np.asarray(boxes, np.float64)[:, k] for k in range(4))
    cols = np.stack([col + w / 2, col, col + w, col + w, col], 1)
    rows = np.stack([row + h / 2, row, row, row + h, row + h], 1)
    a, b, c, d, e, f = Affine(*transform)[:6]
    lon, lat = to_lonlat(crs, (a * cols + b * rows + c).ravel().tolist(),
                         (d * cols + e * rows + f).ravel().tolist())
    return np.asarray(lon).reshape(-1, 5), np.asarray(lat).reshape(-1, 5)


def lonlat_footprints(
    crs: str, transform: GeoTransform, windows: Sequence[Window]
) -> tuple[list[tuple[float, float]], list[Bounds], list[list[tuple[float, float]]]]:
    """For each window: lon/lat of its centre, lon/lat bounding box, and corner ring (closed)."""
    boxes_px = np.array([(w.col_off, w.row_off, w.width, w.height) for w in windows],
                        np.float64).reshape(-1, 4)
    lon, lat = corners_lonlat(crs, transform, boxes_px)
    centres = [(float(a), float(b)) for a, b in zip(lon[:, 0], lat[:, 0], strict=True)]
    boxes = [(float(lo[1:].min()), float(la[1:].min()), float(lo[1:].max()), float(la[1:].max()))
             for lo, la in zip(lon, lat, strict=True)]
    rings = [[(float(x), float(y)) for x, y in zip(lo[1:], la[1:], strict=True)] for lo, la in
             zip(lon, lat, strict=True)]
    rings = [[*r, r[0]] for r in rings]
    return centres, boxes, rings


def short_crs(crs_wkt: str | None) -> str | None:
    """'EPSG:3857' where the CRS has an EPSG code, else its WKT."""
    if not crs_wkt:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_user_input(crs_wkt)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def ground_resolution(crs: str, transform: GeoTransform, width: int, height: int) -> float:
    """Metres on the ground per pixel at the image centre. For a CRS in metres whose scale
    there is within 1 % of true (UTM, national grids) the nominal pixel size, as its metadata
    states it; else (geographic, Web Mercator) the mean ground length of a row and a column
    segment (up to 100 px) measured in lon/lat."""
    span = max(1, min(100, width // 2, height // 2))
    boxes = np.array([(width / 2, height / 2, span, span)], np.float64)
    lon, lat = corners_lonlat(crs, transform, boxes)
    x = edge_metres(lon[0, 1], lat[0, 1], lon[0, 2], lat[0, 2])  # top left -> top right
    y = edge_metres(lon[0, 1], lat[0, 1], lon[0, 4], lat[0, 4])  # top left -> bottom left
    measured = (x + y) / (2 * span)
    a, b, _, d, e, _ = transform
    nominal = (float(np.hypot(a, d)) + float(np.hypot(b, e))) / 2
    return nominal if _in_metres(crs) and abs(measured / nominal - 1) < 0.01 else measured


def _in_metres(crs: str) -> bool:
    from rasterio.crs import CRS

    c = CRS.from_user_input(crs)
    return bool(c.is_projected) and c.linear_units_factor[1] == 1.0
