"""Search results as JSON, GeoJSON (EPSG:4326, opens in QGIS) and CSV. Pure functions."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tilesearch import geo
from tilesearch.records import ImageInfo, TileMeta
from tilesearch.retrieval import SearchResult
from tilesearch.store import LabelSet, Store

CSV_COLUMNS = (
    "rank",
    "tile_id",
    "distance",
    "source",
    "col_off",
    "row_off",
    "width",
    "height",
    "lon",
    "lat",
)
Ring = list[list[float]]
HITS_LAYER = "tilesearch_hits"
"""The name of the hits' layer (GeoJSON "name", GeoPackage layer): a plain identifier; the
query's description is the member "query"."""


def to_json(result: SearchResult) -> str:
    """The result as indented JSON (`SearchResult.to_dict`); `json.loads` gives the dict back."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False)


def to_geojson(result: SearchResult, store: Store, *, paths: bool = True) -> dict[str, Any]:
    """A GeoJSON FeatureCollection in lon/lat (RFC 7946) of the hits' tile footprints.

    Each hit is a Polygon feature with role "hit"; the query tile, when it is a stored
    georeferenced tile, comes first with role "query". Hits from images without a CRS cannot be
    placed on a map: they are left out and counted in the member "skipped_ungeoreferenced".
    With `paths` False, the store and the images' "source" are named by file name only.
    """
    tiles = [h.tile for h in result.hits]
    query = result.query.tile
    placed = [*tiles, query] if query else tiles
    infos = _infos(store, placed)
    rings = _rings(store, placed, infos)
    facts = {t: _ground_facts(infos[m.image_id], rings[t]) for m in placed
             if (t := m.tile_id) in rings}
    features = []
    if query is not None and query.tile_id in rings:
        features.append(
            _feature(
                rings[query.tile_id],
                {"role": "query", "description": result.query.description,
                 **_tile_props(query, paths), **facts[query.tile_id]},
            )
        )
    skipped = 0
    for hit in result.hits:
        ring = rings.get(hit.tile.tile_id)
        if ring is None:
            skipped += 1
            continue
        features.append(
            _feature(
                ring,
                {
                    "role": "hit",
                    "rank": hit.rank,
                    "distance": hit.distance,
                    "similarity": similarity(hit.distance, result.metric),
                    **_tile_props(hit.tile, paths),
                    **facts[hit.tile.tile_id],
                },
            )
        )
    return {
        "type": "FeatureCollection",
        "name": HITS_LAYER,
        "metric": result.metric,
        "store": result.store if paths else Path(result.store).name,
        "query": result.query.description,
        "skipped_ungeoreferenced": skipped,
        "features": features,
    }


def write_geojson(result: SearchResult, store: Store, path: str | Path) -> Path:
    """Write `to_geojson` to `path` (UTF-8); returns the path."""
    out = Path(path)
    out.write_text(
        json.dumps(to_geojson(result, store), indent=1, allow_nan=False), encoding="utf-8"
    )
    return out


def to_csv(result: SearchResult, *, paths: bool = True) -> str:
    """One header row, then one row per hit (lon and lat empty for ungeoreferenced tiles);
    with `paths` False, "source" is the image's file name only."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for hit in result.hits:
        t, w = hit.tile, hit.tile.window
        lon, lat = t.lonlat if t.lonlat else ("", "")
        writer.writerow(
            [
                hit.rank,
                t.tile_id,
                hit.distance,
                _source(t, paths),
                w.col_off,
                w.row_off,
                w.width,
                w.height,
                lon,
                lat,
            ]
        )
    return buf.getvalue()


def _infos(store: Store, tiles: Sequence[TileMeta]) -> dict[int, ImageInfo]:
    """The image records of `tiles`, by image id, one read each."""
    return {i: store.image_by_id(i)["info"] for i in dict.fromkeys(t.image_id for t in tiles)}


def _rings(store: Store, tiles: Sequence[TileMeta],
           infos: dict[int, ImageInfo] | None = None) -> dict[int, Ring]:
    """Counter-clockwise closed lon/lat rings of the georeferenced `tiles`, by tile id
    (`infos`: their image records, when already read)."""
    by_image: dict[int, list[TileMeta]] = {}
    for t in tiles:
        by_image.setdefault(t.image_id, []).append(t)
    infos = infos if infos is not None else _infos(store, tiles)
    rings: dict[int, Ring] = {}
    for image_id, group in by_image.items():
        info = infos[image_id]
        if info.crs is None or info.transform is None:
            continue
        _, _, corners = geo.lonlat_footprints(info.crs, info.transform, [t.window for t in group])
        for t, ring in zip(group, corners, strict=True):
            rings[t.tile_id] = _counter_clockwise([[lon, lat] for lon, lat in ring])
    return rings


def similarity(distance: float, metric: str) -> float | None:
    """The cosine similarity of a hit (1 - its cosine distance); None for other metrics."""
    return round(1.0 - distance, 6) if metric == "cosine" else None


def _ground_facts(info: ImageInfo, ring: Ring) -> dict[str, Any]:
    """The CRS and STAC item of a tile's image `info` and the tile's ground width in metres
    (an edge of its lon/lat `ring`, measured on a local equirectangular view)."""
    (lon0, lat0), (lon1, lat1) = ring[0], ring[1]
    return {"crs": geo.short_crs(info.crs), "item": info.item,
            "ground_size_m": round(geo.edge_metres(lon0, lat0, lon1, lat1), 3)}


def _counter_clockwise(ring: Ring) -> Ring:
    """`ring` (closed) reversed when its signed area is negative (clockwise)."""
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    return ring if area >= 0 else ring[::-1]


def _source(t: TileMeta, paths: bool) -> str:
    return t.source if paths else Path(t.source).name


def _tile_props(t: TileMeta, paths: bool = True) -> dict[str, Any]:
    w = t.window
    return {
        "tile_id": t.tile_id,
        "source": _source(t, paths),
        "col_off": w.col_off,
        "row_off": w.row_off,
        "width": w.width,
        "height": w.height,
        "valid_fraction": round(t.valid_fraction, 4),
        "lon": t.lonlat[0] if t.lonlat else None,
        "lat": t.lonlat[1] if t.lonlat else None,
    }


def _feature(ring: Ring, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": properties,
    }


def labels_geojson(labels: LabelSet, store: Store, *, paths: bool = True) -> dict[str, Any]:
    """A label set as a GeoJSON FeatureCollection (RFC 7946) of its tiles' footprints, each
    with ``label`` "positive" or "negative"; tiles of images without a CRS are counted in
    "skipped_ungeoreferenced"."""
    ids = [*labels.positives, *labels.negatives]
    metas = store.tiles(ids)
    rings = _rings(store, metas)
    positive = set(labels.positives)
    features = [_feature(rings[m.tile_id], {"label": "positive" if m.tile_id in positive
                                            else "negative", **_tile_props(m, paths)})
                for m in metas if m.tile_id in rings]
    return {"type": "FeatureCollection", "name": labels.name, "label_set": labels.name,
            "skipped_ungeoreferenced": len(metas) - len(features), "features": features}
