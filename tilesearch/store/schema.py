"""SQLite schema of a store and the mapping of its rows to records."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tilesearch import geo
from tilesearch.errors import StoreError
from tilesearch.records import TileMeta
from tilesearch.tiling import Window

SCHEMA = """
CREATE TABLE images(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    info TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('indexing', 'done', 'failed')),
    n_tiles INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated REAL
);
CREATE TABLE tiles(
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    col_off INTEGER NOT NULL,
    row_off INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    valid REAL NOT NULL,
    minx REAL, miny REAL, maxx REAL, maxy REAL,
    lon REAL, lat REAL,
    UNIQUE (image_id, row_off, col_off)
);
CREATE VIRTUAL TABLE tiles_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat);
CREATE TABLE failures(path TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL);
"""


@lru_cache(maxsize=256)
def _crs_of(info_json: str) -> str | None:
    try:
        return geo.short_crs(json.loads(info_json).get("crs"))
    except (ValueError, AttributeError) as exc:
        raise StoreError(f"meta.sqlite holds a damaged image record ({exc}); restore the "
                         "store from a backup or re-index into a new one") from exc


def row_to_meta(r: Any) -> TileMeta:
    """A TileMeta from a row of the store's tile SELECT."""
    has_bounds = r[8] is not None
    return TileMeta(
        tile_id=int(r[0]), image_id=int(r[1]), source=str(r[2]),
        window=Window(int(r[3]), int(r[4]), int(r[5]), int(r[6])), valid_fraction=float(r[7]),
        crs=_crs_of(r[14]),
        bounds=(float(r[8]), float(r[9]), float(r[10]), float(r[11])) if has_bounds else None,
        lonlat=(float(r[12]), float(r[13])) if r[12] is not None else None,
        lonlat_bounds=(float(r[15]), float(r[16]), float(r[17]), float(r[18]))
        if r[15] is not None else None,
    )
