"""Overviews (reduced copies) for images lacking them, so zoomed-out map tiles read little."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from tilesearch.errors import InputError
from tilesearch.raster.reader import _first_line, _rasterio, open_image
from tilesearch.raster.remote import gdal_path, is_remote

OVERVIEW_SMALLEST = 128
"""Overviews are built down to the level whose long side is still at least this many px."""


_OVERVIEW_ENV = {"GDAL_TIFF_OVR_BLOCKSIZE": 256, "COMPRESS_OVERVIEW": "DEFLATE",
                 "PREDICTOR_OVERVIEW": 2}


def overview_levels(width: int, height: int) -> list[int]:
    """Decimation factors 2, 4, 8... down to a long side of `OVERVIEW_SMALLEST` px."""
    levels, f = [], 2
    while max(width, height) // f >= OVERVIEW_SMALLEST:
        levels.append(f)
        f *= 2
    return levels


def overview_vrt(path: str | Path, folder: str | Path) -> Path:
    """Where the VRT standing for `path` goes in `folder` when its overviews cannot lie beside
    it (the VRT's overviews are ``<vrt>.ovr``)."""
    name = gdal_path(path) if is_remote(path) else str(Path(path).resolve())
    stem = Path(name.rsplit("/", 1)[-1]).stem
    return Path(folder) / f"{stem}-{hashlib.sha1(name.encode()).hexdigest()[:12]}.vrt"


def overview_source(path: str | Path, folder: str | Path | None) -> str:
    """The file to open for reduced reads of `path`: its VRT in `folder` when one with
    overviews newer than the image was built there (`build_overviews`), else `path` itself
    (a remote image as given: its own overviews, if any, are all there is)."""
    if is_remote(path):
        vrt = overview_vrt(path, folder) if folder is not None else None
        done = vrt is not None and vrt.exists() and vrt.with_name(vrt.name + ".ovr").exists()
        return str(vrt) if done else gdal_path(path)
    if folder is not None:
        vrt = overview_vrt(path, folder)
        ovr = vrt.with_name(vrt.name + ".ovr")
        try:
            if ovr.stat().st_mtime >= Path(path).stat().st_mtime and vrt.exists():
                return str(vrt)
        except OSError:
            pass
    return str(Path(path).resolve())


def build_overviews(path: str | Path, folder: str | Path,
                    beside: bool = True) -> tuple[Path | str, list[int]]:
    """Build external overviews (average) of an image lacking them.

    A GeoTIFF whose file and folder are writable gets ``<image>.ovr`` beside it (the image itself
    is not modified; GIS tools use the .ovr too); any other image gets a VRT in `folder` with
    ``<vrt>.ovr`` (see `overview_source`). Returns the file to open for reduced reads and the
    factors built (empty when the image already had overviews or is small). `beside=False`
    always takes the VRT way. A remote image (URL, object storage) is never written to: it
    gets a VRT in `folder`, whose .ovr reads the whole image once."""
    remote = is_remote(path)
    src: Path | str = gdal_path(path) if remote else Path(path).resolve()
    with open_image(src) as r:
        if r.overview_factors:
            return src, []
        levels = overview_levels(r.info.width, r.info.height)
        gtiff = r.driver == "GTiff"
    if not levels:
        return src, []
    local = Path(src)
    if beside and gtiff and not remote and os.access(local, os.W_OK) and \
            os.access(local.parent, os.W_OK):
        try:
            _add_overviews(local, levels, TIFF_USE_OVR=True)
            return src, levels
        except InputError:
            Path(f"{src}.ovr").unlink(missing_ok=True)  # fall back to the store folder
    vrt = overview_vrt(src, folder)
    vrt.parent.mkdir(parents=True, exist_ok=True)
    from rasterio.shutil import copy

    copy(str(src), str(vrt), driver="VRT")
    _add_overviews(vrt, levels)
    return vrt, levels


def _add_overviews(path: Path, levels: list[int], **env: Any) -> None:
    """GDAL BuildOverviews on `path` opened for update; external .ovr for a VRT, and for a
    GeoTIFF with TIFF_USE_OVR (the image's own bytes stay as they are)."""
    rasterio = _rasterio()
    from rasterio.enums import Resampling

    try:
        with rasterio.Env(**_OVERVIEW_ENV, **env), warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path, "r+") as ds:
                ds.build_overviews(levels, Resampling.average)
    except Exception as exc:  # GDAL errors come as several rasterio classes
        raise InputError(path, f"overviews could not be built ({_first_line(exc)})") from exc
