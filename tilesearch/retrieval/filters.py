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


LONLAT_CRS = ("urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326",
              "OGC:CRS84")


def read_features(path: str | Path) -> list[dict[str, Any]]:
    """The features of a GeoJSON file (a geometry or Feature counts as one); InputError when
    it is unreadable or declares a CRS other than lon/lat."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable GeoJSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(path, "is not a GeoJSON object")
    crs = ((data.get("crs") or {}).get("properties") or {}).get("name")
    if crs is not None and str(crs) not in LONLAT_CRS:
        raise InputError(path, f"is in {crs}; tilesearch reads GeoJSON in lon/lat "
                               "(EPSG:4326): export the layer in EPSG:4326")
    if data.get("type") == "FeatureCollection":
        feats = data.get("features")
        if not isinstance(feats, list) or not all(isinstance(f, dict) for f in feats):
            raise InputError(path, "FeatureCollection has no list of features")
        return feats
    if data.get("type") == "Feature":
        return [data]
    return [{"type": "Feature", "geometry": data, "properties": {}}]


def load_regions(path: str | Path) -> list[tuple[str, Any]]:
    """The (name, polygon) of each polygon feature of a GeoJSON file, named by its ``name``
    or ``id`` property, else by its number; InputError when it holds none."""
    from shapely.geometry import shape

    out = []
    for n, f in enumerate(read_features(path)):
        props = f.get("properties") or {}
        name = str(props.get("name", props.get("id", f.get("id", n))))
        try:
            geom = shape(f.get("geometry"))
        except Exception as exc:  # shapely raises several kinds for bad geometries
            raise InputError(path, f"feature {n}: not a geometry ({exc})") from exc
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise InputError(path, f"feature {n} ({name}): a {geom.geom_type}, not a polygon")
        out.append((name, geom))
    if not out:
        raise InputError(path, "holds no polygon to count in")
    return out


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
