"""Raster reading: the one module that opens image files (rasterio windowed reads)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import geo
from tilesearch.errors import InputError
from tilesearch.raster.remote import REMOTE_OPEN, configure_gdal, gdal_path, is_remote
from tilesearch.records import ImageInfo, Tile
from tilesearch.tiling import Window, block_of

STRETCH_PERCENTILES = (2.0, 98.0)
"""Images that are not uint8 are scaled to 0-255 linearly between these per-band percentiles
of their valid pixels (measured on a decimated read of at most 1024 px on the long side)."""


_STRETCH_SAMPLE = 1024


def _gdal_error() -> type[Exception]:
    """The base class of GDAL's own errors as rasterio raises them (not RasterioError)."""
    from rasterio._err import CPLE_BaseError

    return CPLE_BaseError


def _rasterio() -> Any:
    import rasterio

    return rasterio


class RasterSource:
    """An open image that reads tiles by window; use as a context manager."""

    def __init__(self, path: str | Path, bands: Sequence[int] | None = None,
                 stretch: Sequence[Sequence[float]] | None = None,
                 pixel_size: float | None = None) -> None:
        rasterio = _rasterio()
        self.remote = is_remote(path)
        if self.remote:
            configure_gdal()
            self.path = gdal_path(path)
        else:
            self.path = str(Path(path).resolve())
            if not os.access(self.path, os.R_OK):
                raise InputError(self.path, "cannot be read (missing or no permission)")
        try:
            with warnings.catch_warnings(), rasterio.Env(**(REMOTE_OPEN if self.remote else {})):
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as exc:
            reason = _first_line(exc, self.path)
            raise InputError(self.path, f"not a readable image ({reason})") from exc
        try:
            self.info = self._describe(bands, stretch, pixel_size)
        except (rasterio.errors.RasterioError, _gdal_error()) as exc:  # e.g. damaged keys
            self._ds.close()
            raise InputError(self.path, f"not a readable image ({_first_line(exc, self.path)})"
                             ) from exc
        except BaseException:
            self._ds.close()
            raise

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._ds.close()

    def _describe(self, bands: Sequence[int] | None, stretch: Sequence[Sequence[float]] | None,
                  pixel_size: float | None) -> ImageInfo:
        ds = self._ds
        chosen = _choose_bands(self.path, ds, bands)
        georef = ds.crs is not None and not ds.transform.is_identity
        st = tuple((float(s[0]), float(s[1])) for s in stretch) if stretch else None
        size, mtime = (0, 0.0) if self.remote else _stat(self.path)
        transform = tuple(ds.transform)[:6]
        gsd = (geo.ground_resolution(ds.crs.to_wkt(), transform, ds.width, ds.height)
               if georef else pixel_size)
        info = ImageInfo(
            path=self.path, width=ds.width, height=ds.height, band_count=ds.count,
            dtype=str(ds.dtypes[0]), bands=chosen,
            crs=ds.crs.to_wkt() if georef else None,
            transform=transform if georef else None,
            mask=_mask_kind(ds), size_bytes=size, mtime=mtime, stretch=st, gsd=gsd,
        )
        if info.dtype != "uint8" and info.stretch is None:
            info = ImageInfo(**{**info.__dict__, "stretch": self._measure_stretch(info)})
        return info

    def _measure_stretch(self, info: ImageInfo) -> tuple[tuple[float, float], ...]:
        scale = max(info.width, info.height) / _STRETCH_SAMPLE
        shape = (max(1, int(info.height / max(scale, 1))), max(1, int(info.width / max(scale, 1))))
        data = self.guarded(lambda: self._ds.read(list(info.bands), out_shape=(len(info.bands),
                                                                              *shape)))
        valid = self._valid(data, info, out_shape=shape)
        if np.issubdtype(data.dtype, np.floating) and not valid.any():
            raise InputError(self.path, "no valid pixel with a finite value (all NaN, "
                                        "infinite or nodata)")
        out = []
        for band in data:
            vals = band[valid] if valid.any() else band.ravel()
            lo, hi = np.percentile(vals, STRETCH_PERCENTILES) if vals.size else (0.0, 1.0)
            out.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
        return tuple(out)

    @property
    def dataset(self) -> Any:
        """The open rasterio dataset (for readers built on rasterio, e.g. rio-tiler)."""
        return self._ds

    def guarded(self, read: Any) -> Any:
        """`read()`, its GDAL errors raised as an InputError naming the file."""
        rasterio = _rasterio()
        try:
            return read()
        except (rasterio.errors.RasterioError, _gdal_error()) as exc:
            raise InputError(self.path, f"read failed, file may be corrupt or truncated "
                                        f"({_first_line(exc, self.path)})") from exc

    def _valid(self, data: np.ndarray, info: ImageInfo, window: Any = None,
               out_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Valid pixels: by the dataset's mask (or non-zero in some band where it declares
        none), and finite in every band (NaN and infinity are never valid)."""
        if info.mask == "zero":
            valid = np.asarray((data != 0).any(axis=0))
        else:
            kw: dict[str, Any] = {"window": window}
            if out_shape is not None:
                kw["out_shape"] = out_shape
            valid = np.asarray(self.guarded(lambda: self._ds.dataset_mask(**kw)) > 0)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        return valid

    def coarse_valid(self, factor: int) -> np.ndarray:
        """Validity decimated by `factor` (one cell per `factor` px square), read from the
        overviews where the raster has them: which parts of a huge, mostly empty raster hold
        anything at all, before any tile is read."""
        info = self.info
        shape = (-(-info.height // factor), -(-info.width // factor))
        if info.mask != "zero" and info.dtype.startswith("uint"):
            return np.asarray(self.guarded(lambda: self._ds.dataset_mask(out_shape=shape)) > 0)
        data = self.guarded(lambda: self._ds.read(list(info.bands),
                                                 out_shape=(len(info.bands), *shape)))
        return self._valid(data, info, out_shape=shape)

    def read_block(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (H, W, 3) uint8 and validity (H, W) bool of one window."""
        from rasterio.windows import Window as RioWindow

        rw = RioWindow(window.col_off, window.row_off, window.width, window.height)
        data = self.guarded(lambda: self._ds.read(list(self.info.bands), window=rw))
        valid = self._valid(data, self.info, window=rw)
        return _to_rgb8(data, self.info.stretch), valid

    def read_scaled(self, window: Window, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (height, width, 3) uint8 and validity of `window` resampled to width x height
        (averaged down, bilinear up); GDAL serves a reduced read from the raster's overviews
        where it has them."""
        from rasterio.enums import Resampling
        from rasterio.windows import Window as RioWindow

        rw = RioWindow(window.col_off, window.row_off, window.width, window.height)
        shape = (height, width)
        resampling = Resampling.average if width <= window.width else Resampling.bilinear
        data = self.guarded(lambda: self._ds.read(list(self.info.bands), window=rw,
                                                 out_shape=(len(self.info.bands), *shape),
                                                 resampling=resampling))
        valid = self._valid(data, self.info, window=rw, out_shape=shape)
        return _to_rgb8(data, self.info.stretch), valid

    def read_padded(self, col: int, row: int, side: int, scale: float = 1.0, fill: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (side, side, 3) and validity of the square whose top-left image pixel is
        (`col`, `row`), read at `scale` output px an image px (resampled as `read_scaled` where
        it is not 1); the part past the image's edge is `fill` and invalid. An image edge
        lands on the output pixel `scale` puts it at, so a tile of `side` x `scale` image px
        read this way from its own corner is the tile `read_scaled` gives."""
        info = self.info
        span = side if scale == 1.0 else round(side / scale)  # image px the square covers
        clip = Window(col, row, min(span, info.width - col), min(span, info.height - row))
        if clip.width == span and clip.height == span and scale == 1.0:
            return self.read_block(clip)
        out = np.full((side, side, 3), fill, np.uint8)
        valid = np.zeros((side, side), bool)
        if clip.width <= 0 or clip.height <= 0:
            return out, valid
        w = side if clip.width == span else min(side, round(clip.width * scale))
        h = side if clip.height == span else min(side, round(clip.height * scale))
        if scale == 1.0:
            part, ok = self.read_block(clip)
        else:
            part, ok = self.read_scaled(clip, w, h)
        out[:h, :w], valid[:h, :w] = part, ok
        return out, valid

    @property
    def overview_factors(self) -> list[int]:
        """Decimation factors of the raster's own overviews (empty when it has none)."""
        return list(self._ds.overviews(self.info.bands[0]))

    @property
    def driver(self) -> str:
        """The GDAL driver reading the file (GTiff, PNG, JPEG, VRT...)."""
        return str(self._ds.driver)

    def read_tiles(self, windows: Sequence[Window], size: int | None = None) -> list[Tile]:
        """Tiles for `windows`, read one block per row of tiles to bound memory. With `size`,
        windows of another side are read resampled to `size` px (a store's ground
        resolution), each on its own."""
        tiles: list[Tile] = []
        for _, group in groupby(windows, key=lambda w: w.row_off):
            row = list(group)
            if size is not None and row[0].height != size:
                tiles.extend(self._scaled(row, size))
                continue
            block = block_of(row)
            pixels, valid = self.read_block(block)
            for w in row:
                r, c = w.row_off - block.row_off, w.col_off - block.col_off
                tiles.append(Tile(
                    source=self.path, window=w,
                    pixels=np.ascontiguousarray(pixels[r:r + w.height, c:c + w.width]),
                    valid=valid[r:r + w.height, c:c + w.width].copy(),
                ))
        self.locate(tiles)
        return tiles

    def _scaled(self, windows: list[Window], size: int) -> list[Tile]:
        """One resampled read a window (GDAL's block cache serves the overlap): a tile's
        pixels depend on its window only, however the windows are batched."""
        tiles = []
        for w in windows:
            pixels, valid = self.read_scaled(w, size, size)
            tiles.append(Tile(source=self.path, window=w, pixels=pixels, valid=valid))
        return tiles

    def locate(self, tiles: list[Tile]) -> None:
        """Set the map position of `tiles` of this image (InputError when its
        georeferencing cannot be turned into lon/lat)."""
        try:
            locate_tiles(self.info, tiles)
        except (_rasterio().errors.RasterioError, _gdal_error()) as exc:
            raise InputError(self.path, "its georeferencing cannot be turned into lon/lat "
                                        f"({_first_line(exc, self.path)})") from exc

    def read_resized(self, size: int) -> np.ndarray:
        """The whole image resampled to size x size (bilinear, overviews used when present)."""
        from rasterio.enums import Resampling

        data = self.guarded(lambda: self._ds.read(list(self.info.bands), out_shape=(
            len(self.info.bands), size, size), resampling=Resampling.bilinear))
        return _to_rgb8(data, self.info.stretch)


def locate_tiles(info: ImageInfo, tiles: list[Tile]) -> None:
    """Set the CRS, bounds and lon/lat footprint of `tiles` of a georeferenced image."""
    if not tiles or info.crs is None or info.transform is None:
        return
    centres, boxes, _ = geo.lonlat_footprints(info.crs, info.transform,
                                              [t.window for t in tiles])
    crs = geo.short_crs(info.crs)
    for t, centre, box in zip(tiles, centres, boxes, strict=True):
        t.crs = crs
        t.bounds = geo.window_bounds(info.transform, t.window)
        t.lonlat = centre
        t.lonlat_bounds = box


def _stat(path: str) -> tuple[int, float]:
    st = os.stat(path)
    return st.st_size, st.st_mtime


def open_image(path: str | Path, bands: Sequence[int] | None = None,
               stretch: Sequence[Sequence[float]] | None = None,
               pixel_size: float | None = None) -> RasterSource:
    """Open an image for tiled reading; raises InputError naming the file and the reason.
    `pixel_size` (metres) is the ground resolution of an image without georeferencing."""
    return RasterSource(path, bands=bands, stretch=stretch, pixel_size=pixel_size)


def _choose_bands(path: str, ds: Any, bands: Sequence[int] | None) -> tuple[int, ...]:
    from rasterio.enums import ColorInterp

    if bands:
        bad = [b for b in bands if not 1 <= b <= ds.count]
        if bad or len(bands) not in (1, 3):
            raise InputError(path, f"--bands {','.join(map(str, bands))} must name 1 or 3 of "
                                   f"its {ds.count} bands (1-based)")
        return tuple(bands)
    interp = list(ds.colorinterp)
    rgb = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in interp for c in rgb):
        return tuple(interp.index(c) + 1 for c in rgb)
    if ds.count >= 3:
        return (1, 2, 3)
    return (1,)


def _mask_kind(ds: Any) -> str:
    from rasterio.enums import MaskFlags

    flags = {f for band in ds.mask_flag_enums for f in band}
    if MaskFlags.nodata in flags:
        return "nodata"
    if MaskFlags.alpha in flags:
        return "alpha"
    if MaskFlags.per_dataset in flags:
        return "internal"
    return "zero"


def _to_rgb8(data: np.ndarray, stretch: Sequence[Sequence[float]] | None) -> np.ndarray:
    """(bands, H, W) of any dtype to (H, W, 3) uint8, stretched where `stretch` is given."""
    if stretch is not None:
        lo = np.asarray([s[0] for s in stretch], dtype=np.float32)[:, None, None]
        hi = np.asarray([s[1] for s in stretch], dtype=np.float32)[:, None, None]
        data = data.astype(np.float32)
        if not np.isfinite(data).all():  # invalid pixels: drawn as the low end, not garbage
            data = np.where(np.isfinite(data), data, lo)
        scaled = (data - lo) * (255.0 / (hi - lo))
        data = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    elif data.dtype != np.uint8:
        data = np.clip(data, 0, 255).astype(np.uint8)
    if data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    return np.ascontiguousarray(data.transpose(1, 2, 0))


def _first_line(exc: BaseException, path: str = "") -> str:
    """The first line of a GDAL error, without the file name the caller already gives; where
    rasterio only says "see previous exception", the message of that one (GDAL's own)."""
    seen: BaseException | None = exc
    while seen is not None and "previous exception" in str(seen) and (
            seen.__cause__ or seen.__context__):
        seen = seen.__cause__ or seen.__context__
    text = str(seen or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if path:
        line = line.replace(f"'{path}' ", "").replace(f"{path}: ", "").replace(path, "the file")
    return line.strip()
