"""The store: one folder with fingerprints (raw float32, memory-mapped) and SQLite metadata."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import ModelMismatchError, StoreError
from tilesearch.models import ModelIdentity
from tilesearch.options import GSD, MAX_INVALID, STRIDE, TILE_SIZE
from tilesearch.records import ImageInfo, Tile
from tilesearch.store.audits import Audits
from tilesearch.store.compared import Compared
from tilesearch.store.files import (
    FORMAT_VERSION,
    MANIFEST,
    _append_synced,
    _umask,
    _write_json,
    read_manifest,
    write_lock,
)
from tilesearch.store.labels import Labels
from tilesearch.store.metadata import Metadata
from tilesearch.store.schema import SCHEMA
from tilesearch.store.validate import (
    Layout,
    check_layout,
    check_tables,
    committed_count,
    connect,
    validate_manifest,
)
from tilesearch.store.vectors import Vectors
from tilesearch.tiling import read_scale, scaled_span


class Store(Metadata, Vectors, Compared, Audits, Labels):
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
        self._unsaved: set[str] = set()
        """Manifest keys set by `settle` and written with the first image registered."""
        self._augmented_map: tuple[str, np.ndarray] | None = None
        self.cache: dict[str, Any] = {}
        """What other stages keep with the open store (the loaded search index)."""
        self._mmap: tuple[np.ndarray, np.ndarray] | None = None
        self._rmap: np.ndarray | None = None

    @property
    def layout(self) -> Layout:
        """What the committed tiles need of the vector files (`validate`)."""
        return Layout(self.path, self.vectors_file, self.dim, self.count, self.full_from)

    # ----- opening and creating ---------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, identity: ModelIdentity, *, tile_size: int = TILE_SIZE,
               stride: int = STRIDE, max_invalid: float = MAX_INVALID,
               gsd: float | str = GSD) -> Store:
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
            "max_invalid": max_invalid, "gsd": gsd, "vector_dtype": "float32",
            "created": time.time(),
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

    @property
    def gsd_setting(self) -> float | str:
        """Metres a pixel every georeferenced tile is read at, "auto" until the first
        georeferenced image sets it, or "native" (stores made before ground resolutions)."""
        value = self.manifest.get("gsd", "native")
        return value if isinstance(value, str) else float(value)

    @property
    def gsd(self) -> float | None:
        """The store's ground resolution in metres a pixel; None when not (yet) set."""
        value = self.gsd_setting
        return None if isinstance(value, str) else value

    def settle(self, key: str, value: Any) -> None:
        """Set a manifest entry that the first image makes final (a store of --gsd auto takes
        its first georeferenced image's): kept in memory, written when an image is
        registered, so a run that registers none leaves the manifest as it was."""
        self._need_writable()
        self.manifest[key] = value
        self._unsaved.add(key)

    def begin_image(self, info: ImageInfo) -> int:
        if self._unsaved:
            _write_json(self.path / MANIFEST, self.manifest)
            self._unsaved.clear()
        return super().begin_image(info)

    def tile_span(self, info: ImageInfo) -> tuple[int, int]:
        """(window side, stride) in the pixels of image `info` of this store's tiles."""
        return scaled_span(self.tile_size, self.stride, read_scale(self.gsd, info.gsd))

    # ----- images -------------------------------------------------------------------------









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








    def set_manifest(self, key: str, value: Any) -> None:
        """Record `value` under `key` in the manifest, atomically."""
        self._need_writable()
        self.manifest[key] = value
        _write_json(self.path / MANIFEST, self.manifest)












    def bytes_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def _need_writable(self) -> None:
        if not self.writable:
            raise StoreError(f"{self.path}: store was opened read-only")




def _tile_row(tile_id: int, image_id: int, t: Tile) -> tuple[Any, ...]:
    w, b, ll = t.window, t.bounds, t.lonlat
    return (tile_id, image_id, w.col_off, w.row_off, w.width, w.height, t.valid_fraction,
            *(b if b else (None,) * 4), *(ll if ll else (None, None)))


