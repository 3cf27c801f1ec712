"""Files GIS and embedding tools open: search hits as a GeoPackage layer (pyogrio), and every
tile's fingerprint as GeoParquet 1.1 (pyarrow: geometry, tile id, source, window, embedding),
as Earth Index, Major TOM and Clay publish theirs. Both need the `gis` extra; both are
written beside the target and renamed into place."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import geo
from tilesearch.errors import MissingDependencyError, QueryError
from tilesearch.outputs.export import HITS_LAYER, to_geojson
from tilesearch.outputs.findings import _atomic
from tilesearch.retrieval import SearchResult
from tilesearch.store import Store

GEOPARQUET_VERSION = "1.1.0"
ROWS_PER_GROUP = 65_536
"""Tiles per Parquet row group: a group's embeddings are read and written at once."""
HIT_FIELDS = {"role": object, "rank": np.float64, "tile_id": np.int64, "distance": np.float64,
              "similarity": np.float64, "source": object, "col_off": np.int64,
              "row_off": np.int64, "width": np.int64, "height": np.int64,
              "valid_fraction": np.float64, "lon": np.float64, "lat": np.float64,
              "crs": object, "item": object, "ground_size_m": np.float64}
"""GeoPackage columns of a search hit (the GeoJSON feature's properties) and their types."""


def write_hits_gpkg(result: SearchResult, store: Store, path: str | Path, *,
                    paths: bool = True) -> Path:
    """The georeferenced hits (and the query tile) of `result` as the GeoPackage layer
    `tilesearch_hits` (EPSG:4326 polygons, the GeoJSON's properties as columns)."""
    try:
        from pyogrio.raw import write
    except ImportError as exc:
        raise MissingDependencyError("GeoPackage output needs pyogrio: pip install "
                                     "'tilesearch[gis]' (or write --geojson)") from exc
    import shapely

    feats = to_geojson(result, store, paths=paths)["features"]
    geoms = shapely.to_wkb(shapely.polygons([f["geometry"]["coordinates"][0] for f in feats])) \
        if feats else np.array([], object)
    data = [_column([f["properties"].get(name) for f in feats], kind)
            for name, kind in HIT_FIELDS.items()]
    return _atomic(path, lambda tmp: write(
        str(tmp), geoms, data, list(HIT_FIELDS), driver="GPKG", crs="EPSG:4326",
        geometry_type="Polygon", layer=HITS_LAYER))


def _column(values: list[Any], kind: type) -> np.ndarray:
    if kind is object:
        return np.array(["" if v is None else str(v) for v in values], object)
    if kind is np.int64:
        return np.array([-1 if v is None else v for v in values], np.int64)
    return np.array([np.nan if v is None else v for v in values], np.float64)


def write_geoparquet(store: Store, path: str | Path, *, paths: bool = True,
                     progress: Callable[[int], None] | None = None) -> int:
    """Every tile of `store` as a GeoParquet file: tile_id, source, item (the STAC item id, or
    null), col_off, row_off, width,
    height, lon, lat, geometry (the footprint in lon/lat, WKB; null without georeferencing)
    and embedding (the fingerprint, float32). `progress` is told the tiles written after each
    row group. Returns the tiles written."""
    pa, pq = _pyarrow()
    if store.full_from:
        raise QueryError(f"{store.path}: the fingerprints of tiles 0-{store.full_from - 1} were "
                         "dropped for compact codes (build-index --drop-full); GeoParquet "
                         "holds full fingerprints: index the images into a new store")
    vectors, windows = store.vectors(), store.windows()
    images = {im["id"]: im["info"] for im in store.images()}
    schema = _schema(pa, store.identity.dim)
    meta = {"geo": json.dumps(_geo_metadata(store)),
            "tilesearch": json.dumps({"model": store.identity.to_dict(),
                                      "tile_size": store.tile_size, "stride": store.stride})}
    schema = schema.with_metadata(meta)

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(str(tmp), schema, compression="zstd") as out:
            for lo in range(0, store.count, ROWS_PER_GROUP):
                hi = min(store.count, lo + ROWS_PER_GROUP)
                out.write_table(_group(pa, schema, lo, windows[lo:hi], vectors[lo:hi], images,
                                       paths))
                if progress is not None:
                    progress(hi - lo)

    _atomic(path, write)
    return store.count


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError("GeoParquet output needs pyarrow: pip install "
                                     "'tilesearch[gis]'") from exc
    return pa, pq


def _schema(pa: Any, dim: int) -> Any:
    return pa.schema([
        ("tile_id", pa.int64()), ("source", pa.string()), ("item", pa.string()),
        ("col_off", pa.int32()),
        ("row_off", pa.int32()), ("width", pa.int32()), ("height", pa.int32()),
        ("lon", pa.float64()), ("lat", pa.float64()), ("geometry", pa.binary()),
        ("embedding", pa.list_(pa.float32(), dim))])


def _group(pa: Any, schema: Any, first: int, win: np.ndarray, vecs: np.ndarray,
           images: dict[int, Any], paths: bool) -> Any:
    """One row group: tiles `first ..` with windows `win` and fingerprints `vecs`."""
    import shapely

    n = len(win)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    wkb = np.full(n, None, object)
    for image_id in np.unique(win[:, 0]):
        rows = np.flatnonzero(win[:, 0] == image_id)
        info = images[int(image_id)]
        if info.crs is None or info.transform is None:
            continue
        ring_lon, ring_lat = geo.corners_lonlat(info.crs, info.transform, win[rows, 1:])
        lon[rows], lat[rows] = ring_lon[:, 0], ring_lat[:, 0]
        rings = np.stack([ring_lon[:, [1, 2, 3, 4, 1]], ring_lat[:, [1, 2, 3, 4, 1]]], -1)
        wkb[rows] = shapely.to_wkb(shapely.polygons(rings))
    source = [_name(images[int(i)].path, paths) for i in win[:, 0]]
    item = [images[int(i)].item for i in win[:, 0]]
    flat = pa.array(np.ascontiguousarray(vecs, np.float32).ravel())
    cols = [pa.array(np.arange(first, first + n, dtype=np.int64)), pa.array(source),
            pa.array(item, pa.string()),
            *(pa.array(win[:, k].astype(np.int32)) for k in (1, 2, 3, 4)),
            pa.array(lon, from_pandas=True), pa.array(lat, from_pandas=True),
            pa.array(list(wkb), pa.binary()),
            pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1])]
    return pa.Table.from_arrays(cols, schema=schema)


def _geo_metadata(store: Store) -> dict[str, Any]:
    """The GeoParquet file metadata: WKB polygons in OGC:CRS84 (lon/lat), with their bbox."""
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["Polygon"]}
    extent = store.lonlat_extent()
    if extent is not None:
        column["bbox"] = [float(v) for v in extent]
    return {"version": GEOPARQUET_VERSION, "primary_column": "geometry",
            "columns": {"geometry": column}}


def _name(path: str, paths: bool) -> str:
    return path if paths else Path(path).name
