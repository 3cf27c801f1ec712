"""Find-all results as GIS users open them: detections as GeoJSON, GeoPackage (the ``gis``
extra, pyogrio) or CSV, counts per region as CSV, and a score heatmap per image as a
Cloud-Optimised GeoTIFF (one value per stride cell, georeferenced like the image), which
QGIS overlays on the imagery. Every file is written beside its target and renamed into
place, so a failed export leaves nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.detect import FindResult, RegionCount, detection_properties
from tilesearch.errors import InputError, MissingDependencyError
from tilesearch.store import Store

FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage", ".csv": "CSV"}
"""Detection files by suffix."""
CSV_FIELDS = ("rank", "max_score", "mean_score", "n_tiles", "area_m2", "lon", "lat", "tiles")
REGION_FIELDS = ("region", "count", "expected", "expected_low", "expected_high")
NODATA = -1.0
"""Heatmap cells no tile covers."""


def detection_format(path: str | Path) -> str:
    """The format `path`'s suffix names; InputError naming those known."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(path, "detections are written as .geojson, .gpkg or .csv")
    return fmt


def write_detections(result: FindResult, path: str | Path) -> Path:
    """Write `result`'s detections to `path` in the format its suffix names."""
    fmt = detection_format(path)
    if fmt == "GeoJSON":
        text = json.dumps(result.to_geojson(), indent=1, allow_nan=False)
        return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if fmt == "CSV":
        return _atomic(path, lambda tmp: tmp.write_text(detections_csv(result),
                                                        encoding="utf-8"))
    return _atomic(path, lambda tmp: _write_gpkg(result, tmp))


def detections_csv(result: FindResult) -> str:
    """One header row, then a row per detection (its tiles joined by spaces)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for i, d in enumerate(result.detections):
        row = detection_properties(i, d)
        w.writerow({**row, "tiles": " ".join(map(str, row["tiles"]))})
    return buf.getvalue()


def regions_csv(counts: list[RegionCount]) -> str:
    """One header row, then a row per region: its count and the corrected count."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, REGION_FIELDS, lineterminator="\n")
    w.writeheader()
    for c in counts:
        w.writerow(c.to_dict())
    return buf.getvalue()


def write_regions(counts: list[RegionCount], path: str | Path) -> Path:
    text = regions_csv(counts)
    return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_gpkg(result: FindResult, path: Path) -> None:
    try:
        from pyogrio.raw import write
    except ImportError as exc:
        raise MissingDependencyError("GeoPackage output needs pyogrio: pip install "
                                     "'tilesearch[gis]' (or write .geojson)") from exc
    import shapely

    rows = [(i, d) for i, d in enumerate(result.detections) if d.geometry is not None]
    props = [detection_properties(i, d) for i, d in rows]
    geoms = shapely.to_wkb(shapely.multipolygons(
        [shapely.get_parts(d.geometry) for _, d in rows])) if rows else np.array([], object)
    fields = [f for f in CSV_FIELDS if f != "tiles"]
    data = [np.array([p[f] if p[f] is not None else np.nan for p in props], np.float64)
            for f in fields]
    data.append(np.array([" ".join(map(str, p["tiles"])) for p in props], object))
    write(str(path), geoms, data, [*fields, "tiles"], driver="GPKG", crs="EPSG:4326",
          geometry_type="MultiPolygon", layer=result.label_set)


def heatmap_cells(store: Store, image_id: int, scores: np.ndarray,
                  windows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Image `image_id`'s score grid: the best score of the tiles covering each stride
    cell (`NODATA` where none does), and the cell size in pixels."""
    info = store.image_by_id(image_id)["info"]
    cell = max(1, store.stride)
    rows, cols = -(-info.height // cell), -(-info.width // cell)
    grid = np.full((rows, cols), NODATA, np.float32)
    win = store.windows() if windows is None else windows
    for t in np.flatnonzero(win[:, 0] == image_id):
        _, c, r, w, h = win[t]
        sl = (slice(r // cell, -(-(r + h) // cell)), slice(c // cell, -(-(c + w) // cell)))
        grid[sl] = np.maximum(grid[sl], scores[t])
    return grid, cell


def write_heatmaps(store: Store, scores: np.ndarray, folder: str | Path) -> list[Path]:
    """A COG of scores per georeferenced image of `store` in `folder` (made when missing),
    named after the image; returns the files written."""
    import rasterio
    from affine import Affine

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    win = store.windows()
    written = []
    for image_id in np.unique(win[:, 0]):
        info = store.image_by_id(int(image_id))["info"]
        if not info.georeferenced:
            continue
        grid, cell = heatmap_cells(store, int(image_id), scores, win)
        assert info.transform is not None
        transform = Affine.from_gdal(*info.transform) * Affine.scale(cell)
        target = out / f"{Path(info.path).stem}.heatmap.tif"
        profile = {"driver": "COG", "width": grid.shape[1], "height": grid.shape[0],
                   "count": 1, "dtype": "float32", "crs": info.crs, "transform": transform,
                   "nodata": NODATA, "compress": "deflate"}

        def put(tmp: Path, grid: np.ndarray = grid, profile: dict[str, Any] = profile) -> None:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(grid, 1)

        written.append(_atomic(target, put))
    return written


def _atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Run `write` on a temporary file beside `path`, then rename it into place."""
    target = Path(path)
    with _temporary(target) as tmp:
        write(tmp)
        os.replace(tmp, target)
    return target


@contextmanager
def _temporary(target: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                                dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()
