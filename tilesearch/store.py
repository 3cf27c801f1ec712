"""The store: one folder with fingerprints (raw float32, memory-mapped) and SQLite metadata.

Layout of a store folder:

- ``manifest.json``: format version, model identity, tile size, stride, max invalid fraction.
- ``vectors.f32``: fingerprints, row-major float32, row ``i`` is tile id ``i``. After
  ``tilesearch build-index --drop-full`` only compact codes are kept for tiles below
  ``full_from`` and the file (then ``vectors-<full_from>.f32``) starts at that tile.
- ``norms.f32``: the squared L2 norm of every tile's fingerprint (exact search needs them).
- ``ann/``: the approximate search index of compact codes, when one was built (``ann.py``).
- ``meta.sqlite``: images, tiles (window, bounds, lon/lat, valid fraction) and an R-tree of
  tile footprints in lon/lat; SQLite in WAL mode.

Appending is crash-safe: vectors are written and fsynced first, then their rows are committed
in one SQLite transaction; opening a store truncates the vector files to the committed count,
so a kill at any moment leaves a store that opens and holds every tile reported done.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import store_check
from tilesearch.errors import ModelMismatchError, StoreError
from tilesearch.models.base import ModelIdentity
from tilesearch.pages import advise_random
from tilesearch.records import Bounds, Footprint, ImageInfo, Tile, TileMeta
from tilesearch.store_check import (
    CheckReport,
    Layout,
    check_layout,
    check_tables,
    committed_count,
    connect,
    validate_manifest,
)
from tilesearch.store_schema import SCHEMA, row_to_meta
from tilesearch.tiling import Window

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class Store:
    """An open store. `Store.create` makes one, `Store.open` opens one (read-only by default)."""

    def __init__(self, path: Path, manifest: dict[str, Any], writable: bool) -> None:
        validate_manifest(path, manifest)
        self.path = path
        self.manifest = manifest
        self.writable = writable
        self.identity = ModelIdentity.from_dict(manifest["model"])
        self.dim = self.identity.dim
        self._lock_fd: int | None = None
        self.db = connect(path, writable)
        try:
            if writable:
                self._lock()
            check_tables(path, self.db)
            if writable:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
            self.count = self._committed_count()
            self.full_from = int(manifest.get("full_from", 0))
            check_layout(self.layout)
        except BaseException:
            self.close()
            raise
        self._recovered = False
        self._mmap: tuple[np.ndarray, np.ndarray] | None = None
        self._rmap: np.ndarray | None = None

    @property
    def layout(self) -> Layout:
        """What the committed tiles need of the vector files (`store_check`)."""
        return Layout(self.path, self.vectors_file, self.dim, self.count, self.full_from)

    # ----- opening and creating ---------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, identity: ModelIdentity, *, tile_size: int = 256,
               stride: int = 128, max_invalid: float = 0.5) -> Store:
        """Make a new, empty store folder (it must not exist or be empty).

        Built in a temporary folder beside it and renamed into place, so a store appears
        whole or not at all, and of two processes creating the same store one gets a
        clean StoreError."""
        p = Path(path)
        if p.is_file():
            raise StoreError(f"{p}: is a file, not a store folder; name a folder for the store")
        if p.exists() and any(p.iterdir()):
            raise StoreError(f"{p}: folder exists and is not empty; choose a new store path")
        p.parent.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": "tilesearch-store", "format_version": FORMAT_VERSION,
            "model": identity.to_dict(), "tile_size": tile_size, "stride": stride,
            "max_invalid": max_invalid, "vector_dtype": "float32", "created": time.time(),
        }
        validate_manifest(p, manifest)  # before anything is written
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", suffix=".new", dir=p.parent))
        try:
            db = sqlite3.connect(tmp / "meta.sqlite")
            db.executescript(SCHEMA)
            db.execute("PRAGMA journal_mode=WAL")
            db.close()
            for name in ("vectors.f32", "norms.f32"):
                (tmp / name).touch()
            _write_json(tmp / MANIFEST, manifest)
            os.chmod(tmp, 0o777 & ~_umask())
            os.rename(tmp, p)  # replaces an empty folder; fails on a non-empty one
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if p.is_dir() and any(p.iterdir()):
                raise StoreError(f"{p}: another process created this store meanwhile; "
                                 "run the command again to append to it") from exc
            raise
        return cls(p, manifest, writable=True)

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False) -> Store:
        """Open an existing store; StoreError when the folder is not a store."""
        p = Path(path)
        manifest = read_manifest(p)
        if manifest.get("format") != "tilesearch-store":
            raise StoreError(f"{p}: not a tilesearch store ({MANIFEST} has another format)")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{p}: store format {manifest.get('format_version')} is not "
                             f"supported by this tilesearch (format {FORMAT_VERSION}); "
                             "re-index or upgrade tilesearch")
        return cls(p, manifest, writable=writable)

    def close(self) -> None:
        self._mmap = self._rmap = None
        if getattr(self, "db", None) is not None:
            self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self) -> None:
        self._lock_fd = write_lock(self.path)

    def _committed_count(self) -> int:
        return committed_count(self.db)

    def _truncate_vectors(self) -> None:
        """Cut the vector files to the committed tiles (what an interrupted append left past
        them). Only a writer does this, right before it appends, once every check of the
        command has passed: a command refused earlier changes no byte."""
        check_layout(self.layout)
        for name, size in ((self.vectors_file, self.layout.vector_bytes),
                           ("norms.f32", self.layout.norm_bytes)):
            f = self.path / name
            if f.stat().st_size > size:
                os.truncate(f, size)
        self._recovered = True

    # ----- model identity -----------------------------------------------------------------
    def check_model(self, identity: ModelIdentity) -> None:
        """Raise ModelMismatchError unless `identity` is the model this store was made with."""
        if identity != self.identity:
            mine, theirs = self.identity, identity
            raise ModelMismatchError(
                f"{self.path}: store holds {mine.name} fingerprints (recipe {mine.recipe}, "
                f"weights {mine.weights_sha256[:12]}, {mine.dim}-d), not {theirs.name} (recipe "
                f"{theirs.recipe}, weights {theirs.weights_sha256[:12]}, {theirs.dim}-d); use "
                f"--model {mine.name} --recipe {mine.recipe} with the same weights, or index "
                "into a new store")

    @property
    def tile_size(self) -> int:
        return int(self.manifest["tile_size"])

    @property
    def stride(self) -> int:
        return int(self.manifest["stride"])

    @property
    def max_invalid(self) -> float:
        return float(self.manifest["max_invalid"])

    # ----- images -------------------------------------------------------------------------
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

    # ----- tiles and vectors ----------------------------------------------------------------
    def append(self, image_id: int, tiles: Sequence[Tile], vectors: np.ndarray) -> list[int]:
        """Store fingerprints and metadata of `tiles` durably; returns their tile ids."""
        self._need_writable()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(tiles), self.dim):
            raise StoreError(f"{self.path}: expected fingerprints of shape "
                             f"({len(tiles)}, {self.dim}), got {vectors.shape}")
        if not tiles:
            return []
        if not self._recovered:
            self._truncate_vectors()
        first = self.count
        norms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
        try:
            for name, arr in ((self.vectors_file, vectors), ("norms.f32", norms)):
                _append_synced(self.path / name, arr.tobytes())
            ids = list(range(first, first + len(tiles)))
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT INTO tiles(id, image_id, col_off, row_off, width, height, valid, "
                    "minx, miny, maxx, maxy, lon, lat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_tile_row(i, image_id, t) for i, t in zip(ids, tiles, strict=True)])
                self.db.executemany(
                    "INSERT INTO tiles_rtree(id, min_lon, max_lon, min_lat, max_lat) "
                    "VALUES (?,?,?,?,?)",
                    [(i, b[0], b[2], b[1], b[3]) for i, t in zip(ids, tiles, strict=True)
                     if (b := t.lonlat_bounds) is not None])
        except BaseException:
            self._truncate_vectors()
            raise
        self.count = first + len(tiles)
        self._mmap = self._rmap = None
        return ids

    @property
    def vectors_file(self) -> str:
        return str(self.manifest.get("vectors_file", "vectors.f32"))

    def vectors(self) -> np.ndarray:
        """All fingerprints as a read-only memory map of shape (count, dim); StoreError when
        some were dropped for compact codes (see `full_vectors` and `ann.fingerprints`)."""
        if self.full_from:
            raise StoreError(f"{self.path}: the full-precision fingerprints of tiles below "
                             f"{self.full_from} were dropped (build-index --drop-full); this "
                             "needs them: re-index into a store kept with full vectors")
        return self._maps()[0]

    def full_vectors(self, start: int, stop: int) -> np.ndarray:
        """Full-precision fingerprints of tiles ``start .. stop - 1`` (all >= `full_from`)."""
        self._need_full(start, stop - 1)
        return self._maps()[0][start - self.full_from:stop - self.full_from]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Full-precision fingerprints of tiles `ids` (all >= `full_from`), as a new array.
        Only their pages are read from disk (`tilesearch.pages.advise_random`): a search
        re-ranking 128 scattered tiles of a cold store reads those, not megabytes around
        each. They are not prefetched (``MADV_WILLNEED``): on pages already in memory, the
        usual case in a served store, asking for them is pure overhead."""
        ids = np.asarray(ids, np.int64)
        if len(ids):
            self._need_full(int(ids.min()), int(ids.max()))
        return np.asarray(self._scattered()[ids - self.full_from])

    def _need_full(self, first: int, last: int) -> None:
        """StoreError unless tiles ``first .. last`` all keep full-precision fingerprints."""
        if first < self.full_from or last >= self.count or first > last + 1:
            raise StoreError(f"{self.path}: no full-precision fingerprints for tiles "
                             f"{first}..{last} (kept: {self.full_from}..{self.count - 1})")

    def _scattered(self) -> np.ndarray:
        """A second map of the vectors, for scattered rows (`rows`): faults read no more than
        their page, while `vectors` keeps the kernel's readahead for scans."""
        if self._rmap is None or len(self._rmap) != self.count - self.full_from:
            self._rmap = self._map_vectors()
            advise_random(self._rmap)
        return self._rmap

    def _map_vectors(self) -> np.ndarray:
        """The kept full-precision vectors, memory-mapped (rows from `full_from` on)."""
        rows = self.count - self.full_from
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return np.memmap(self.path / self.vectors_file, dtype=np.float32, mode="r",
                         shape=(rows, self.dim))

    def set_manifest(self, key: str, value: Any) -> None:
        """Record `value` under `key` in the manifest, atomically."""
        self._need_writable()
        self.manifest[key] = value
        _write_json(self.path / MANIFEST, self.manifest)

    def drop_full_before(self, n: int) -> None:
        """Keep full-precision fingerprints only for tiles from `n` on (the others must be in
        a built index). Crash-safe: the kept rows go to a new file, the manifest switches to
        it in one atomic write, then the old file is removed."""
        self._need_writable()
        n = min(n, self.count)
        if n <= self.full_from:
            return
        old = self.path / self.vectors_file
        new_name = f"vectors-{n}.f32"
        tmp = self.path / (new_name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(np.ascontiguousarray(self.full_vectors(n, self.count)).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / new_name)
        self._mmap = self._rmap = None
        self.manifest.update(full_from=n, vectors_file=new_name)
        _write_json(self.path / MANIFEST, self.manifest)
        self.full_from = n
        if old.name != new_name:
            old.unlink(missing_ok=True)

    def sq_norms(self) -> np.ndarray:
        """Squared L2 norm of each fingerprint, shape (count,)."""
        return self._maps()[1]

    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._mmap is None or len(self._mmap[1]) != self.count:
            nrm = (np.memmap(self.path / "norms.f32", dtype=np.float32, mode="r",
                             shape=(self.count,)) if self.count else np.zeros(0, np.float32))
            self._mmap = (self._map_vectors(), nrm)
        return self._mmap

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

    def bytes_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def _need_writable(self) -> None:
        if not self.writable:
            raise StoreError(f"{self.path}: store was opened read-only")


_TILE_SELECT = (
    "SELECT t.id, t.image_id, i.path, t.col_off, t.row_off, t.width, t.height, t.valid, "
    "t.minx, t.miny, t.maxx, t.maxy, t.lon, t.lat, i.info, r.min_lon, r.min_lat, r.max_lon, "
    "r.max_lat FROM tiles t JOIN images i ON i.id = t.image_id "
    "LEFT JOIN tiles_rtree r ON r.id = t.id"
)


def _tile_row(tile_id: int, image_id: int, t: Tile) -> tuple[Any, ...]:
    w, b, ll = t.window, t.bounds, t.lonlat
    return (tile_id, image_id, w.col_off, w.row_off, w.width, w.height, t.valid_fraction,
            *(b if b else (None,) * 4), *(ll if ll else (None, None)))


def _image_row(row: Sequence[Any]) -> dict[str, Any]:
    try:
        info = ImageInfo.from_dict(json.loads(row[1]))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreError(f"meta.sqlite holds a damaged record of image {row[0]} ({exc}); "
                         "restore the store from a backup or re-index into a new one") from exc
    return {"id": int(row[0]), "info": info, "status": row[2], "n_tiles": int(row[3]),
            "error": row[4]}


def write_lock(path: Path) -> int:
    """Take the store's write lock (released when the returned descriptor is closed);
    StoreError when another process holds it."""
    fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreError(f"{path}: another process is writing to this store; "
                         "wait for it to finish") from exc
    return fd


def check(path: str | Path, *, repair: bool = False) -> CheckReport:
    """A report on the store at `path` (`store_check.check`); with `repair`, under the write
    lock, what can be recovered is, and a search index or augmentation that covered tiles
    forgotten by the repair is dropped (rebuild it with `build-index`)."""
    p = Path(path)
    manifest = read_manifest(p)
    if manifest.get("format") != "tilesearch-store":
        raise StoreError(f"{p}: not a tilesearch store ({MANIFEST} has another format)")
    fd = write_lock(p) if repair else None
    try:
        report = store_check.check(p, manifest, repair=repair)
    finally:
        if fd is not None:
            os.close(fd)
    if repair and report.repaired and report.ok:
        with Store.open(p, writable=True) as s:
            for key in ("ann", "augment"):
                entry = s.manifest.get(key)
                if entry and int(entry.get("count", 0)) > s.count:
                    s.set_manifest(key, None)
                    report.repaired.append(f"dropped the {key} entry, which covered forgotten "
                                           "tiles: run 'tilesearch build-index' again")
    return report


def read_manifest(p: Path) -> dict[str, Any]:
    """The parsed manifest of the store folder `p`; StoreError when there is none."""
    if p.is_file():
        raise StoreError(f"{p}: is a file, not a store folder; name a folder for the store")
    if not p.is_dir():
        raise StoreError(f"{p}: no such store folder; create one with 'tilesearch index'")
    try:
        manifest = json.loads((p / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{p}: not a tilesearch store (no readable {MANIFEST})") from exc
    if not isinstance(manifest, dict):
        raise StoreError(f"{p}: {MANIFEST} is not a JSON object; the store is damaged: "
                         f"restore {MANIFEST} from a backup or re-index into a new store")
    return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _append_synced(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
