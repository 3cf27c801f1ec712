"""Where a search may look: geographic and per-image filters, applied inside the search.

A filter becomes a boolean mask over tile ids; distances of masked-out tiles are set to
infinity before ranking, so a filter never costs results (no over-fetching and dropping).
A tile passes a bounding-box or polygon filter when its centre lies inside (EPSG:4326).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import InputError, QueryError
from tilesearch.records import Bounds
from tilesearch.store import Store


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions on the tiles a search may return; empty means no restriction."""

    bbox: Bounds | None = None
    polygon: Any = None
    images: tuple[str, ...] = ()
    exclude_images: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.bbox or self.polygon is not None or self.images or self.exclude_images)


def load_polygon(path: str | Path) -> Any:
    """The union of the (multi)polygons of a GeoJSON file (geometry, Feature or collection)."""
    import shapely
    from shapely.geometry import shape

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable GeoJSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "is not a GeoJSON object (a geometry, Feature or "
                               "FeatureCollection)")
    if data.get("type") == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise InputError(path, "FeatureCollection has no list of features")
        geoms = [f.get("geometry") if isinstance(f, dict) else f for f in features]
    elif data.get("type") == "Feature":
        geoms = [data.get("geometry")]
    else:
        geoms = [data]
    try:
        shapes = [shape(g) for g in geoms if g]
    except (ValueError, AttributeError, TypeError, KeyError, IndexError,
            shapely.errors.ShapelyError) as exc:
        raise InputError(path, f"holds an invalid geometry ({exc})") from exc
    polys = [g for g in shapes if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        raise InputError(path, "holds no Polygon or MultiPolygon (EPSG:4326 lon/lat expected)")
    return shapely.union_all(polys)


def allowed_mask(store: Store, flt: SearchFilter) -> np.ndarray | None:
    """True for each tile id the filter lets through; None when the filter is empty."""
    if not flt:
        return None
    mask = np.ones(store.count, dtype=bool)
    if flt.images:
        mask &= _image_mask(store, flt.images)
    if flt.exclude_images:
        mask &= ~_image_mask(store, flt.exclude_images)
    if flt.bbox is not None:
        mask &= _area_mask(store, flt.bbox, None)
    if flt.polygon is not None:
        mask &= _area_mask(store, tuple(flt.polygon.bounds), flt.polygon)
    return mask


def _image_mask(store: Store, names: tuple[str, ...]) -> np.ndarray:
    ids = []
    images = store.images()
    for name in names:
        match = [im["id"] for im in images
                 if im["info"].path in (name, str(Path(name).resolve()))
                 or Path(im["info"].path).name == name]
        if not match:
            known = ", ".join(sorted(Path(im["info"].path).name for im in images)[:8])
            raise QueryError(f"no indexed image {name!r} in {store.path} (images: {known})")
        ids += match
    mask = np.zeros(store.count, dtype=bool)
    mask[store.tile_ids_of_images(ids)] = True
    return mask


def _area_mask(store: Store, bbox: Bounds, polygon: Any) -> np.ndarray:
    west, south, east, north = bbox
    if not all(np.isfinite(bbox)):
        raise QueryError(f"bbox {bbox} must be four finite numbers (west,south,east,north)")
    if west > east or south > north:
        raise QueryError(f"bbox {bbox} must be west,south,east,north with west <= east")
    ids, lon, lat = store.tiles_in_bbox(bbox)
    mask = np.zeros(store.count, dtype=bool)
    if not len(ids):
        return mask
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    if polygon is not None:
        import shapely

        inside &= shapely.contains_xy(polygon, lon, lat)
    mask[ids[inside]] = True
    return mask
