"""Planning an indexing run: the store to write to, the images still to index and their windows
not yet committed, what happened to each image."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tilesearch.errors import InputError, StoreError
from tilesearch.models import Fingerprinter, block_tiles, check_tiling
from tilesearch.options import GSD, MAX_INVALID, MAX_UPSAMPLE, STRIDE, TILE_SIZE
from tilesearch.raster import RasterSource, open_image
from tilesearch.records import ImageInfo
from tilesearch.store import Store
from tilesearch.tiling import (
    SCALE_TOLERANCE,
    Window,
    coarse_fractions,
    group_blocks,
    read_scale,
    tile_grid,
)

Progress = Callable[[int, int], None]
"""Called as progress(windows_done_now, images_failed_so_far)."""


@dataclass
class IndexReport:
    """What one `index` run did."""

    store: str
    indexed: list[tuple[str, int]] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    partial: list[tuple[str, int]] = field(default_factory=list)
    """Images that failed part way: (path, tiles they have in the store). Their tiles stay
    searchable (each was read whole) and the next run resumes them; they are in `failed` too."""
    tiles_added: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False when nothing could be indexed: no image is indexed now or from before, and
        no tile was added."""
        return bool(self.indexed or self.already_done or self.tiles_added)

    @property
    def tiles_per_second(self) -> float:
        return self.tiles_added / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Scaling:
    """How images meet a store's ground resolution: the metres a pixel of images without
    georeferencing, and how far a coarser image may be upsampled."""

    pixel_size: float | None = None
    max_upsample: float = MAX_UPSAMPLE


@dataclass
class _Plan:
    info: ImageInfo
    windows: list[Window]


def open_or_create_store(path: str | Path, model: Fingerprinter, *, tile_size: int | None,
                         stride: int | None, max_invalid: float | None,
                         gsd: float | str | None = None) -> Store:
    """Open the store at `path` for appending (checking model, tiling and ground
    resolution), or create it."""
    p = Path(path)
    if (p / "manifest.json").exists():
        store = Store.open(p, writable=True)
        try:
            store.check_model(model.identity)
            _check_setting(store, "tile_size", tile_size)
            _check_setting(store, "stride", stride)
            _check_setting(store, "max_invalid", max_invalid)
            if gsd not in (None, "auto", store.gsd_setting):
                raise StoreError(f"{store.path}: store reads every tile at --gsd "
                                 f"{store.gsd_setting}, not {gsd}; leave --gsd unset to "
                                 "append, or index into a new store")
        except BaseException:
            store.close()
            raise
        return store
    check_tiling(model.identity.recipe, tile_size or TILE_SIZE, stride or STRIDE)
    return Store.create(p, model.identity, tile_size=tile_size or TILE_SIZE,
                        stride=stride or STRIDE,
                        max_invalid=MAX_INVALID if max_invalid is None else max_invalid,
                        gsd=GSD if gsd is None else gsd)


def _check_setting(store: Store, key: str, value: float | None) -> None:
    if value is not None and value != store.manifest[key]:
        raise StoreError(f"{store.path}: store was made with {key}={store.manifest[key]}, "
                         f"not {value}; leave it unset to append, or index into a new store")


def record_failures(store: Store, report: IndexReport,
                    failed: list[tuple[str, str]]) -> None:
    """Record `failed` images in the store (a later run retries them), only when the run
    indexed something: a run that indexed nothing leaves the store as it was."""
    if report.ok:
        for path, reason in failed:
            store.record_failure(path, reason)


def plan_images(files: list[str | Path], store: Store, bands: Sequence[int] | None,
                report: IndexReport, items: Mapping[str, str] | None = None,
                scaling: Scaling | None = None) -> list[_Plan]:
    """The images still to index and their windows not yet committed; images that cannot be
    used are listed as failures (recorded in the store at the end of a run that indexed
    something), images already done listed in the report. `items` names the STAC item of
    an image, by the path it is recorded under. Windows are in each image's own pixels,
    sized so that every tile covers the store's ground size (`Store.tile_span`), row by row,
    or for a block recipe block by block (`tiling.group_blocks`): local and cluster runs
    then cut the same blocks and give the same tile ids."""
    plans = []
    for f in files:
        try:
            plan = _plan_one(f, store, bands, items or {}, scaling or Scaling())
        except InputError as exc:
            report.failed.append((exc.path, exc.reason))
            continue
        if plan is None:
            report.already_done.append(str(f))
        else:
            plans.append(plan)
    return plans


def _plan_one(path: str | Path, store: Store, bands: Sequence[int] | None,
              items: Mapping[str, str], scaling: Scaling) -> _Plan | None:
    with open_image(path, bands=bands, pixel_size=scaling.pixel_size) as src:
        info = src.info
        if info.path in items:
            info = replace(info, item=items[info.path])
        row = store.image(info.path)
        if row is not None and row["status"] == "done":
            old: ImageInfo = row["info"]
            if (old.size_bytes, old.mtime) != (info.size_bytes, info.mtime):
                raise InputError(path, "changed since it was indexed; index it into a new "
                                       "store")
            return None
        if row is not None:
            info = _resume_info(info, row["info"])
        _check_scale(store, info, scaling)
        span, step = store.tile_span(info)
        if info.width < span or info.height < span:
            raise InputError(path, f"image is {info.width}x{info.height} px, smaller than "
                                   f"one {span} px tile")
        done = store.done_windows(row["id"]) if row else set()
        windows = [w for w in tile_grid(info.width, info.height, span, step)
                   if (w.col_off, w.row_off) not in done]
        if (per_side := block_tiles(store.identity.recipe)) > 1:  # each block's tiles together
            windows = [w for b in group_blocks(windows, info.width, info.height, span, step,
                                               per_side) for _, w in b.tiles]
        windows = _drop_empty(src, windows, span, 1.0 - store.max_invalid)
    if not windows and not done:
        raise InputError(path, f"no tile has at least {1.0 - store.max_invalid:.0%} valid "
                               "pixels (empty or fully masked image?)")
    return _Plan(info, windows)


def _check_scale(store: Store, info: ImageInfo, scaling: Scaling) -> None:
    """InputError when `info` is too coarse for `store`; a store of --gsd auto takes the
    first georeferenced image's ground resolution (`Store.settle`)."""
    if store.gsd_setting == "auto" and info.georeferenced and info.gsd:
        store.settle("gsd", float(f"{info.gsd:.6g}"))
    scale = read_scale(store.gsd, info.gsd)
    if scale * scaling.max_upsample < 1.0 - SCALE_TOLERANCE:
        raise InputError(info.path, f"its ground resolution of {info.gsd:.3g} m a pixel is "
                                    f"{1 / scale:.1f}x coarser than the store's {store.gsd:.3g} "
                                    f"m, beyond --max-upsample {scaling.max_upsample:g}; index "
                                    f"it into a store of --gsd {info.gsd:.3g} or coarser")


COARSE_CELLS = 8
"""Before reading tiles, validity is read decimated to this many cells across a tile; a
window whose cells are almost all invalid (under a quarter of the valid share a tile needs)
is not read. A huge sparse raster is then rejected or cut down in one coarse read, at the cost
of one decimated read of the mask for every image (cheap where it has overviews)."""


def _drop_empty(src: RasterSource, windows: list[Window], size: int,
                keep_from: float) -> list[Window]:
    """The windows that may hold enough valid pixels, by `RasterSource.coarse_valid`."""
    if keep_from <= 0 or not windows:
        return windows
    factor = max(1, size // COARSE_CELLS)
    try:
        coarse = src.coarse_valid(factor)
    except InputError:  # damaged in part (truncated, bad overviews): the tiles will tell
        return windows
    frac = coarse_fractions(coarse, factor, windows)
    return [w for w, f in zip(windows, frac, strict=True) if f >= keep_from / 4]


def _resume_info(new: ImageInfo, old: ImageInfo) -> ImageInfo:
    """Keep the bands, stretch and ground resolution of a partly indexed image so its tiles
    stay comparable."""
    return ImageInfo(**{**new.__dict__, "bands": old.bands, "stretch": old.stretch,
                        "gsd": old.gsd})
