"""Labels from a GeoJSON file (points or polygons in lon/lat, as QGIS writes them): a point
marks the tile whose centre is nearest among those covering it, a polygon every tile whose
centre lies inside. A feature's ``label`` property says "positive" (the default) or
"negative"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import InputError
from tilesearch.retrieval.filters import SearchFilter, allowed_mask, read_features
from tilesearch.store import Store


def marks_from_geojson(store: Store, path: str | Path) -> tuple[list[int], list[int]]:
    """(positive, negative) tile ids marked by the features of the GeoJSON file `path`."""
    features = read_features(path)
    pos: set[int] = set()
    neg: set[int] = set()
    for n, feature in enumerate(features):
        ids = _tiles_of(store, path, n, feature.get("geometry"))
        kind = str((feature.get("properties") or {}).get("label", "positive")).lower()
        if kind not in ("positive", "negative"):
            raise InputError(path, f"feature {n}: label {kind!r} is not 'positive' or "
                                   "'negative'")
        (pos if kind == "positive" else neg).update(ids)
    return sorted(pos - neg), sorted(neg)


def _tiles_of(store: Store, path: str | Path, n: int, geometry: Any) -> list[int]:
    from shapely.geometry import shape

    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several kinds for bad geometries
        raise InputError(path, f"feature {n}: not a geometry ({exc})") from exc
    if geom.geom_type in ("Point", "MultiPoint"):
        return [_nearest_tile(store, path, n, p.x, p.y) for p in getattr(geom, "geoms", [geom])]
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        mask = allowed_mask(store, SearchFilter(polygon=geom))
        ids = np.flatnonzero(mask).tolist() if mask is not None else []
        if not ids:
            raise InputError(path, f"feature {n}: no indexed tile has its centre inside")
        return ids
    raise InputError(path, f"feature {n}: a {geom.geom_type} marks no tile (points or "
                           "polygons)")


def _nearest_tile(store: Store, path: str | Path, n: int, lon: float, lat: float) -> int:
    near = [(t.tile_id, t.lonlat) for t in store.tiles_near(lon, lat) if t.lonlat is not None]
    if not near:
        raise InputError(path, f"feature {n}: no indexed tile covers {lon:.6f},{lat:.6f} "
                               "(lon,lat)")
    return min(near, key=lambda c: (c[1][0] - lon) ** 2 + (c[1][1] - lat) ** 2)[0]
