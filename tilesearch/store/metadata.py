"""The store's metadata in SQLite: images, tiles, failures, spatial lookups."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError
from tilesearch.records import Bounds, Footprint, ImageInfo, TileMeta
from tilesearch.store.schema import row_to_meta
from tilesearch.tiling import Window


class Metadata:
    """Reading and writing the images, tiles and failures of an open store (a part of `Store`)."""

    path: Path
    db: sqlite3.Connection
    count: int

    def _need_writable(self) -> None:
        raise NotImplementedError

    def image(self, path: str) -> dict[str, Any] | None:
        """The image row for `path` (keys id, info, status, n_tiles, error), or None."""
        row = self.db.execute("SELECT id, info, status, n_tiles, error FROM images "
                              "WHERE path = ?", (path,)).fetchone()
        return _image_row(row) if row else None

    def image_by_id(self, image_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT id, info, status, n_tiles, error FROM images "
                              "WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no image with id {image_id}")
        return _image_row(row)

    def images(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, info, status, n_tiles, error FROM images "
                               "ORDER BY id").fetchall()
        return [_image_row(r) for r in rows]

    def begin_image(self, info: ImageInfo) -> int:
        """Register `info` as being indexed (or resume it); returns its image id."""
        self._need_writable()
        existing = self.image(info.path)
        with self.db:
            self.db.execute("BEGIN")
            if existing:
                self.db.execute("UPDATE images SET status='indexing', error=NULL, info=?, "
                                "updated=? WHERE id=?",
                                (json.dumps(info.to_dict()), time.time(), existing["id"]))
                image_id = int(existing["id"])
            else:
                cur = self.db.execute("INSERT INTO images(path, info, status, updated) "
                                      "VALUES (?, ?, 'indexing', ?)",
                                      (info.path, json.dumps(info.to_dict()), time.time()))
                image_id = int(cur.lastrowid or 0)
            self.db.execute("DELETE FROM failures WHERE path=?", (info.path,))
        return image_id

    def done_windows(self, image_id: int) -> set[tuple[int, int]]:
        """(col_off, row_off) of the tiles of an image already committed."""
        rows = self.db.execute("SELECT col_off, row_off FROM tiles WHERE image_id=?",
                               (image_id,))
        return {(int(c), int(r)) for c, r in rows}

    def tile_count(self, image_id: int) -> int:
        """Number of committed tiles of an image."""
        n = self.db.execute("SELECT COUNT(*) FROM tiles WHERE image_id=?", (image_id,))
        return int(n.fetchone()[0])

    def finish_image(self, image_id: int) -> int:
        """Mark an image done; returns its tile count."""
        self._need_writable()
        count = self.tile_count(image_id)
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE images SET status='done', n_tiles=?, updated=? WHERE id=?",
                            (count, time.time(), image_id))
        return count

    def record_failure(self, path: str, reason: str) -> None:
        """Remember that `path` failed (a later run retries it); keeps its committed tiles."""
        self._need_writable()
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO failures(path, reason, at) VALUES (?,?,?)",
                            (path, reason, time.time()))
            self.db.execute("UPDATE images SET status='failed', error=?, updated=? "
                            "WHERE path=? AND status != 'done'", (reason, time.time(), path))

    def failures(self) -> list[tuple[str, str]]:
        return [(str(p), str(r)) for p, r in
                self.db.execute("SELECT path, reason FROM failures ORDER BY path")]

    def tiles(self, ids: Sequence[int]) -> list[TileMeta]:
        """Metadata of the tiles `ids`, in the same order; StoreError for an unknown id."""
        found: dict[int, TileMeta] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"{_TILE_SELECT} WHERE t.id IN ({marks})", chunk)
            found.update((int(r[0]), row_to_meta(r)) for r in rows)
        missing = [i for i in ids if i not in found]
        if missing:
            raise StoreError(f"{self.path}: no tile with id {missing[0]} "
                             f"(tile ids run from 0 to {self.count - 1})")
        return [found[i] for i in ids]

    def change_stamp(self) -> tuple[Any, ...]:
        """What changes when tiles are committed or images change (tiles committed, images,
        their last update), by one small query: a reader's cheap test for a newer store."""
        row = self.db.execute("SELECT (SELECT COALESCE(MAX(id) + 1, 0) FROM tiles), "
                              "(SELECT COUNT(*) FROM images), (SELECT MAX(updated) FROM images)"
                              ).fetchone()
        return tuple(row)

    def windows(self) -> np.ndarray:
        """Every tile's image id, col_off, row_off, width and height, (count, 5) int64 in tile
        id order: what overlap tests over the whole store need, in one read."""
        rows = self.db.execute("SELECT image_id, col_off, row_off, width, height FROM tiles "
                               "ORDER BY id").fetchall()
        return np.array(rows, dtype=np.int64).reshape(-1, 5)

    def footprints(self, ids: Sequence[int]) -> list[Footprint]:
        """Image and window of the tiles `ids` (those that exist), in the same order: a light
        read for overlap tests, without the full metadata."""
        ids = [int(i) for i in ids]
        found: dict[int, Footprint] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            rows = self.db.execute("SELECT id, image_id, col_off, row_off, width, height FROM "
                                   f"tiles WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update((r[0], Footprint(r[0], r[1], Window(r[2], r[3], r[4], r[5])))
                         for r in rows)
        return [found[i] for i in ids if i in found]

    def lonlat_boxes(self) -> np.ndarray:
        """Every tile's lon/lat footprint box (min_lon, min_lat, max_lon, max_lat), (count, 4)
        float64 in tile id order, NaN where a tile has none: overlap tests across images."""
        out = np.full((self.count, 4), np.nan)
        rows = self.db.execute("SELECT id, min_lon, min_lat, max_lon, max_lat FROM tiles_rtree")
        a = np.array(rows.fetchall(), np.float64).reshape(-1, 5)
        a = a[a[:, 0] < self.count]
        out[a[:, 0].astype(np.int64)] = a[:, 1:]
        return out

    def lonlat_boxes_of(self, ids: Sequence[int]) -> dict[int, tuple[float, float, float, float]]:
        """The lon/lat boxes (min_lon, min_lat, max_lon, max_lat) of the tiles `ids` that have
        one, by tile id: a light read for overlap tests across images."""
        ids = [int(i) for i in ids]
        found: dict[int, tuple[float, float, float, float]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            rows = self.db.execute("SELECT id, min_lon, min_lat, max_lon, max_lat FROM "
                                   f"tiles_rtree WHERE id IN ({','.join('?' * len(chunk))})",
                                   chunk)
            found.update((r[0], (r[1], r[2], r[3], r[4])) for r in rows)
        return found

    def tile(self, tile_id: int) -> TileMeta:
        return self.tiles([tile_id])[0]

    def tiles_near(self, lon: float, lat: float) -> list[TileMeta]:
        """Tiles whose lon/lat footprint box contains the point."""
        rows = self.db.execute(
            f"{_TILE_SELECT} WHERE t.id IN (SELECT id FROM tiles_rtree WHERE min_lon <= ? "
            "AND max_lon >= ? AND min_lat <= ? AND max_lat >= ?)", (lon, lon, lat, lat))
        return [row_to_meta(r) for r in rows]

    def tiles_in_bbox(self, bbox: Bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids, centre longitudes and centre latitudes of the tiles whose lon/lat footprint box
        intersects `bbox` (west, south, east, north), found through the R-tree."""
        rows = self.db.execute(
            "SELECT id, lon, lat FROM tiles WHERE id IN (SELECT id FROM tiles_rtree WHERE "
            "max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?)",
            (bbox[0], bbox[2], bbox[1], bbox[3])).fetchall()
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2]

    def tile_ids_of_images(self, image_ids: Sequence[int]) -> np.ndarray:
        """Ids of every tile of the given images."""
        marks = ",".join("?" * len(image_ids))
        rows = self.db.execute(f"SELECT id FROM tiles WHERE image_id IN ({marks})",
                               list(image_ids))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def lonlat_extent(self) -> Bounds | None:
        """(west, south, east, north) of all georeferenced tiles, or None when there are none."""
        row = self.db.execute("SELECT MIN(min_lon), MIN(min_lat), MAX(max_lon), MAX(max_lat) "
                              "FROM tiles_rtree").fetchone()
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def tile_at(self, image_id: int, window: Window) -> TileMeta | None:
        row = self.db.execute(f"{_TILE_SELECT} WHERE t.image_id=? AND t.col_off=? AND "
                              "t.row_off=?", (image_id, window.col_off, window.row_off))
        r = row.fetchone()
        return row_to_meta(r) if r else None


_TILE_SELECT = (
    "SELECT t.id, t.image_id, i.path, t.col_off, t.row_off, t.width, t.height, t.valid, "
    "t.minx, t.miny, t.maxx, t.maxy, t.lon, t.lat, i.info, r.min_lon, r.min_lat, r.max_lon, "
    "r.max_lat FROM tiles t JOIN images i ON i.id = t.image_id "
    "LEFT JOIN tiles_rtree r ON r.id = t.id"
)


def _image_row(row: Sequence[Any]) -> dict[str, Any]:
    try:
        info = ImageInfo.from_dict(json.loads(row[1]))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreError(f"meta.sqlite holds a damaged record of image {row[0]} ({exc}); "
                         "restore the store from a backup or re-index into a new one") from exc
    return {"id": int(row[0]), "info": info, "status": row[2], "n_tiles": int(row[3]),
            "error": row[4]}
