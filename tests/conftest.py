"""Shared synthetic data for the tests: seeded images and small stores with fake fingerprints.

Fixtures (each is a factory unless noted):

- ``make_geotiff(path, width, height, *, crs, ...)``: a patterned GeoTIFF, optionally masked.
- ``make_png(path, width, height, *, seed=0)``: the same pattern as a non-georeferenced PNG.
- ``build_store(images, *, path=None, dim=8, seed=0)``: a Store indexing `images` with fake
  fingerprints (the identity is ``FAKE_IDENTITY`` for dim 8).
- ``fake_store``: a ready Store of two 600 x 500 GeoTIFFs (EPSG:32633 and EPSG:3857).
- ``real_data``: the path of ``../shared/data``; skips the test when it is absent.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tilesearch import raster, tiling
from tilesearch.models.base import ModelIdentity
from tilesearch.records import Tile
from tilesearch.store import Store

FAKE_IDENTITY = ModelIdentity("fake", "0" * 64, 8, "none")
ANCHOR_LONLAT = (15.0, 45.0)
"""Where synthetic rasters are placed: their top-left corner lies at this lon/lat."""
REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pattern(width: int, height: int, bands: int = 3, seed: int = 0) -> np.ndarray:
    """Seeded float32 pattern in [0, 1] of shape (bands, height, width): waves, a gradient,
    flat discs and a little noise, so every 256 px tile looks different."""
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)[:, None]
    out = np.empty((bands, height, width), np.float32)
    for b in range(bands):
        fx, fy = rng.uniform(0.005, 0.03, 2)
        phase = rng.uniform(0, 2 * np.pi)
        out[b] = 0.35 + 0.25 * np.sin(fx * x + phase) * np.cos(fy * y) + 0.15 * x / width
    for _ in range(12):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 60)
        x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, width))
        y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, height))
        disc = (x[x0:x1] - cx) ** 2 + (y[y0:y1] - cy) ** 2 < r * r
        out[:, y0:y1, x0:x1][:, disc] = rng.uniform(0, 1, (bands, 1))
    out += rng.standard_normal(out.shape, dtype=np.float32) * 0.02
    return np.clip(out, 0, 1, out=out)


def invalid_region(width: int, height: int) -> np.ndarray:
    """The (height, width) bool mask of the top-left triangle that masked rasters leave empty."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.asarray(xx + yy < (width + height) // 4)


def _scale(data: np.ndarray, dtype: str) -> np.ndarray:
    if np.issubdtype(np.dtype(dtype), np.floating):
        return data.astype(dtype)
    top = {"uint8": 255, "uint16": 10000}.get(dtype, 1000)
    return np.round(data * top).astype(dtype)


def _transform(crs: Any, pixel_size: float | None) -> Any:
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.warp import transform

    c = CRS.from_user_input(crs)
    if c.is_geographic:
        return from_origin(*ANCHOR_LONLAT, pixel_size or 5e-6, pixel_size or 5e-6)
    xs, ys = transform("EPSG:4326", c, [ANCHOR_LONLAT[0]], [ANCHOR_LONLAT[1]])
    return from_origin(xs[0], ys[0], pixel_size or 0.5, pixel_size or 0.5)


def write_geotiff(
    path: str | Path,
    width: int,
    height: int,
    *,
    crs: Any,
    bands: int = 3,
    dtype: str = "uint8",
    alpha: bool = False,
    nodata: float | None = None,
    seed: int = 0,
    pixel_size: float | None = None,
    transform: Any = None,
) -> Path:
    """Write a seeded patterned GeoTIFF; returns its path.

    `crs` is anything rasterio accepts ("EPSG:32633", "EPSG:3857", "EPSG:4326") or None for a
    file without georeferencing. The top-left corner sits at ``ANCHOR_LONLAT``; pixels are
    `pixel_size` map units (default 0.5 m, or 5e-6 degrees for a geographic CRS), unless an
    affine `transform` is given. With `alpha`
    an alpha band is added, with `nodata` that value is set; either way the pixels of
    ``invalid_region`` are marked invalid (and valid pixels never equal `nodata`).
    """
    import rasterio
    from rasterio.enums import ColorInterp

    data = _scale(pattern(width, height, bands, seed), dtype)
    hole = invalid_region(width, height)
    if nodata is not None:
        nd = np.asarray(nodata, dtype=dtype)
        data[data == nd] = nd - 1 if nd > 0 else nd + 1
        data[:, hole] = nodata
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands + int(alpha),
        "dtype": dtype,
        "nodata": nodata,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform or _transform(crs, pixel_size))
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, list(range(1, bands + 1)))
        if alpha:
            top = np.iinfo(dtype).max if np.issubdtype(np.dtype(dtype), np.integer) else 1
            ds.write(np.where(hole, 0, top).astype(dtype), bands + 1)
            interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue][:bands]
            interp += [ColorInterp.gray] * (bands - len(interp))
            ds.colorinterp = [*interp, ColorInterp.alpha]
    return Path(path)


def write_png(path: str | Path, width: int, height: int, *, seed: int = 0) -> Path:
    """Write the seeded pattern as an 8-bit RGB PNG (no georeferencing); returns its path."""
    from PIL import Image

    data = _scale(pattern(width, height, 3, seed), "uint8")
    Image.fromarray(np.ascontiguousarray(data.transpose(1, 2, 0))).save(path)
    return Path(path)


def fake_fingerprints(tiles: Sequence[Tile], dim: int = 8, seed: int = 0) -> np.ndarray:
    """(N, dim) float32: per tile mean and std of each colour over valid pixels (one in 16), / 255,
    in the first 6 dimensions (zero beyond), plus seeded normal noise of std 0.01."""
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 0.01, (len(tiles), dim)).astype(np.float32)
    n = min(dim, 6)
    for i, t in enumerate(tiles):
        pixels, valid = t.pixels[::4, ::4], t.valid[::4, ::4]  # every 16th pixel is plenty
        px = (pixels[valid] if valid.any() else pixels.reshape(-1, 3)).astype(np.float32)
        out[i, :n] += (np.concatenate([px.mean(axis=0), px.std(axis=0)]) / 255.0)[:n]
    return out


def index_images(store: Store, images: Sequence[str | Path], seed: int = 0) -> list[int]:
    """Index `images` into the writable `store` as the indexer does, with fake fingerprints.

    Tiles with more than ``store.max_invalid`` of their pixels invalid are skipped; returns the
    tile ids added.
    """
    ids: list[int] = []
    for n, path in enumerate(images):
        with raster.open_image(path) as src:
            grid = tiling.tile_grid(src.info.width, src.info.height, store.tile_size, store.stride)
            tiles = [t for t in src.read_tiles(grid) if t.valid_fraction >= 1.0 - store.max_invalid]
            image_id = store.begin_image(src.info)
        ids += store.append(image_id, tiles, fake_fingerprints(tiles, store.dim, seed + n))
        store.finish_image(image_id)
    return ids


@pytest.fixture(scope="session")
def _image_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Runs an image writer once per distinct set of arguments, then copies its file."""
    folder = tmp_path_factory.mktemp("image-cache")
    made: dict[str, Path] = {}

    def cached(writer: Callable[..., Path], path: str | Path, *args: Any, **kw: Any) -> Path:
        key = repr((writer.__name__, Path(path).suffix, args, sorted(kw.items())))
        if key not in made:
            made[key] = writer(folder / f"{len(made)}{Path(path).suffix}", *args, **kw)
        shutil.copyfile(made[key], path)
        return Path(path)

    return cached


@pytest.fixture
def make_geotiff(_image_cache: Callable[..., Path]) -> Callable[..., Path]:
    """Factory: ``make_geotiff(path, width, height, *, crs, bands=3, dtype='uint8',
    alpha=False, nodata=None, seed=0, pixel_size=None, transform=None)``; see
    ``write_geotiff`` (files are made once per session and copied)."""
    return functools.partial(_image_cache, write_geotiff)


@pytest.fixture
def make_png(_image_cache: Callable[..., Path]) -> Callable[..., Path]:
    """Factory: ``make_png(path, width, height, *, seed=0)``; see ``write_png``."""
    return functools.partial(_image_cache, write_png)


@pytest.fixture
def build_store(tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Factory: ``build_store(images, *, path=None, dim=8, seed=0) -> Store`` (writable),
    a new store in `tmp_path` indexing `images`; stores are closed after the test."""
    made: list[Store] = []

    def build(
        images: Sequence[str | Path], *, path: str | Path | None = None, dim: int = 8, seed: int = 0
    ) -> Store:
        where = Path(path) if path else tmp_path / f"store{len(made)}"
        identity = FAKE_IDENTITY if dim == 8 else ModelIdentity("fake", "0" * 64, dim, "none")
        store = Store.create(where, identity)
        made.append(store)
        index_images(store, images, seed)
        return store

    yield build
    for s in made:
        s.close()


@pytest.fixture
def fake_store(
    tmp_path: Path, make_geotiff: Callable[..., Path], build_store: Callable[..., Store]
) -> Store:
    """A store of two seeded 600 x 500 RGB GeoTIFFs in `tmp_path`, ``a.tif`` in EPSG:32633 and
    ``b.tif`` in EPSG:3857, 12 tiles each (ids 0-11 and 12-23), dim-8 fake fingerprints.
    b.tif lies 0.01 degrees (about 790 m) east of a.tif: they do not overlap on the ground."""
    from rasterio.transform import from_origin
    from rasterio.warp import transform

    a = make_geotiff(tmp_path / "a.tif", 600, 500, crs="EPSG:32633", seed=1)
    xs, ys = transform("EPSG:4326", "EPSG:3857", [ANCHOR_LONLAT[0] + 0.01], [ANCHOR_LONLAT[1]])
    b = make_geotiff(tmp_path / "b.tif", 600, 500, crs="EPSG:3857", seed=2,
                     transform=from_origin(xs[0], ys[0], 0.5, 0.5))
    return build_store([a, b], path=tmp_path / "store")


@pytest.fixture
def closed_store(fake_store: Store) -> Path:
    """The folder of `fake_store`, closed: for tests that open it themselves (or damage it)."""
    fake_store.close()
    return fake_store.path


@pytest.fixture
def real_data() -> Path:
    """``../shared/data`` (real imagery); the test is skipped when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _restore_blas(request: pytest.FixtureRequest) -> Iterator[None]:
    """The web tests' `create_app` limits BLAS threads process-wide: every other test gets
    the limits back as they were."""
    if not request.module.__name__.startswith("test_web"):
        yield
        return
    import faiss  # noqa: F401  (its BLAS too)
    from threadpoolctl import threadpool_limits

    saved = threadpool_limits(limits=None)
    yield
    saved.restore_original_limits()
