"""What the web app holds: the store (one read-only handle per worker thread), its images by
id, and the caches of rendered map tiles and thumbnails."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from tilesearch import api, geo
from tilesearch.errors import QueryError
from tilesearch.models import Fingerprinter
from tilesearch.outputs import render
from tilesearch.records import ImageInfo, TileMeta
from tilesearch.store import MANIFEST, Store, Warmer
from tilesearch.tiling import Window, offsets
from tilesearch.web.errors import NotFound
from tilesearch.web.geomap import GeoMap
from tilesearch.web.imagery import LRU, Pyramid, encode_png, max_zoom


class StoreState:
    """The served store. Images are known by their store id; only their recorded paths are read."""

    def __init__(self, path: str | Path, cache_size: int = 2048) -> None:
        self.path = Path(path).resolve()
        self._local = threading.local()
        self._refresh_lock = threading.Lock()
        self._generation = 0
        self._seen: tuple[Any, ...] | None = None
        self.images: dict[int, ImageInfo] = {}
        self.n_tiles: dict[int, int] = {}
        self.count = 0
        self.refresh()  # raises StoreError for a folder that is not a store
        store = self.store()
        self.tile_size, self.stride = store.tile_size, store.stride
        self.version = hashlib.sha1(
            f"{self.path}:{store.manifest.get('created')}".encode()).hexdigest()[:12]
        self.pyramid = Pyramid(self.path / api.OVERVIEW_FOLDER)
        self._geomap: tuple[int, GeoMap] | None = None
        self.tiles_png = LRU(cache_size)
        self.thumbs_png = LRU(cache_size)
        self._model: Fingerprinter | None = None
        self._model_lock = threading.Lock()
        self.warmer: Warmer | None = None
        """Reading the store's search files into memory, when the app was asked to (`warm`)."""

    def fingerprinter(self) -> Fingerprinter:
        """The store's model, loaded on the first image search and kept for the next ones
        (loaded once under a lock; its `embed` may be called from several threads)."""
        with self._model_lock:
            if self._model is None:
                self._model = api.store_fingerprinter(self.store())
            return self._model

    @property
    def generation(self) -> int:
        """Bumped whenever `refresh` saw the store change (tiles, images, manifest): what
        caches of whole-store arrays key on. Labels are not part of it: they are read from
        SQLite on each request (each read its own transaction, so a write by `api.label`
        through another connection is seen by the next read)."""
        return self._generation

    def store(self) -> Store:
        """This thread's read-only handle (SQLite connections are not shared across threads),
        reopened after the store changed (`refresh`)."""
        s: Store | None = getattr(self._local, "store", None)
        if s is not None and self._local.generation != self._generation:
            s.close()
            s = None
        if s is None:
            s = self._local.store = Store.open(self.path)
            self._local.generation = self._generation
        return s

    def refresh(self) -> bool:
        """Re-read the images and the tile count if the store changed since last looked (tiles
        appended, images finished, manifest rewritten by build-index); True when it had.
        One small SQLite query and a stat, so it runs before every request."""
        seen = self._look()
        if seen == self._seen:
            return False
        with self._refresh_lock:
            seen = self._look()
            if seen == self._seen:
                return False
            self._generation += 1  # every thread reopens its handle (count, manifest, vectors)
            store = self.store()
            rows = store.images()
            self.images = {im["id"]: im["info"] for im in rows if im["status"] == "done"}
            self.n_tiles = {im["id"]: im["n_tiles"] for im in rows}
            self.count = store.count
            self._seen = seen
            return True

    def _look(self) -> tuple[Any, ...]:
        """What changes when the store does: tile count, last image update, manifest mtime."""
        return (*self.store().change_stamp(), (self.path / MANIFEST).stat().st_mtime_ns)

    def image(self, image_id: int) -> ImageInfo:
        if image_id not in self.images:
            raise NotFound(f"no indexed image with id {image_id} "
                           f"(ids: {', '.join(map(str, sorted(self.images))) or 'none'})")
        return self.images[image_id]

    def check_tiles(self, ids: list[int]) -> None:
        for i in ids:
            if not 0 <= i < self.count:
                raise NotFound(f"no tile with id {i} (tile ids run from 0 to {self.count - 1})")

    def tile(self, tile_id: int) -> TileMeta:
        self.check_tiles([tile_id])
        return self.store().tile(tile_id)

    def image_summary(self, image_id: int) -> dict[str, Any]:
        info = self.images[image_id]
        return {"id": image_id, "name": Path(info.path).name, "width": info.width,
                "height": info.height, "tiles": self.n_tiles.get(image_id, 0),
                "max_zoom": max_zoom(info.width, info.height),
                "georeferenced": info.georeferenced, "crs": geo.short_crs(info.crs)}

    def tile_at(self, image_id: int, col: float, row: float) -> TileMeta:
        """The stored tile of an image containing pixel (col, row) whose centre is nearest."""
        info = self.image(image_id)
        if not (0 <= col < info.width and 0 <= row < info.height):
            raise QueryError(f"pixel {col:.0f},{row:.0f} lies outside the image "
                             f"({info.width} x {info.height})")
        size, stride = self.store().tile_span(info)
        cols = [c for c in offsets(info.width, size, stride) if c <= col < c + size]
        rows = [r for r in offsets(info.height, size, stride) if r <= row < r + size]
        windows = sorted((Window(c, r, size, size) for c in cols for r in rows),
                         key=lambda w: (w.col_off + size / 2 - col) ** 2
                         + (w.row_off + size / 2 - row) ** 2)
        for w in windows:
            meta = self.store().tile_at(image_id, w)
            if meta is not None:
                return meta
        raise NotFound(f"no indexed tile at pixel {col:.0f},{row:.0f} of image {image_id} "
                       "(it may be mostly nodata)")

    def geomap(self) -> GeoMap:
        """The georeferenced images on one Web Mercator map, remade when the store changed."""
        made = self._geomap
        if made is None or made[0] != self._generation:
            made = self._geomap = (self._generation,
                                   GeoMap(self.images, self.path / api.OVERVIEW_FOLDER))
        return made[1]

    def mercator_tile(self, z: int, x: int, y: int) -> bytes:
        key = ("merc", self._generation, z, x, y)
        png = self.tiles_png.get(key)
        if not isinstance(png, bytes):
            png = self.geomap().render(z, x, y)
            self.tiles_png.put(key, png)
        return png

    def tile_at_lonlat(self, lon: float, lat: float) -> TileMeta:
        """The stored tile under (lon, lat): in the first image drawn there that has one."""
        under = self.geomap().images_under(lon, lat)
        for image_id, col, row in under:
            try:
                return self.tile_at(image_id, col, row)
            except NotFound:
                continue
        raise NotFound(f"no indexed tile at {lon:.6f}, {lat:.6f}" + (
            " (the images there are mostly nodata)" if under else
            " (no georeferenced image of the store lies there)"))

    def rings(self, metas: list[TileMeta]) -> list[list[tuple[float, float]] | None]:
        """Each tile's outline in lon/lat (closed ring of its corners); None where its image
        is not georeferenced. One CRS transform an image."""
        out: list[list[tuple[float, float]] | None] = [None] * len(metas)
        by_image: dict[int, list[int]] = {}
        for k, m in enumerate(metas):
            by_image.setdefault(m.image_id, []).append(k)
        for image_id, ks in by_image.items():
            info = self.images.get(image_id)
            if info is None or info.crs is None or info.transform is None:
                continue
            _, _, rings = geo.lonlat_footprints(info.crs, info.transform,
                                                [metas[k].window for k in ks])
            for k, ring in zip(ks, rings, strict=True):
                out[k] = ring
        return out

    def map_tile(self, image_id: int, z: int, x: int, y: int) -> bytes:
        key = (image_id, z, x, y)
        png = self.tiles_png.get(key)
        if not isinstance(png, bytes):
            png = self.pyramid.render(self.image(image_id), z, x, y)
            self.tiles_png.put(key, png)
        return png

    def thumbnail(self, tile_id: int, size: int) -> bytes:
        key = (tile_id, size)
        png = self.thumbs_png.get(key)
        if not isinstance(png, bytes):
            png = encode_png(render.thumbnail(self.store(), self.tile(tile_id), size))
            self.thumbs_png.put(key, png)
        return png
