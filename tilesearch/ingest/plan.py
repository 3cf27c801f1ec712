"""Planning an indexing run: the store to write to, the images still to index and their windows
not yet committed, what happened to each image."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tilesearch.errors import InputError, StoreError
from tilesearch.models import Fingerprinter
from tilesearch.options import MAX_INVALID, STRIDE, TILE_SIZE
from tilesearch.raster import RasterSource, open_image
from tilesearch.records import ImageInfo
from tilesearch.store import Store
from tilesearch.tiling import Window, coarse_fractions, tile_grid

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


@dataclass
class _Plan:
    info: ImageInfo
    windows: list[Window]


def open_or_create_store(path: str | Path, model: Fingerprinter, *, tile_size: int | None,
                         stride: int | None, max_invalid: float | None) -> Store:
    """Open the store at `path` for appending (checking model and tiling), or create it."""
    p = Path(path)
    if (p / "manifest.json").exists():
        store = Store.open(p, writable=True)
        try:
            store.check_model(model.identity)
            _check_setting(store, "tile_size", tile_size)
            _check_setting(store, "stride", stride)
            _check_setting(store, "max_invalid", max_invalid)
        except BaseException:
            store.close()
            raise
        return store
    return Store.create(p, model.identity, tile_size=tile_size or TILE_SIZE,
                        stride=stride or STRIDE,
                        max_invalid=MAX_INVALID if max_invalid is None else max_invalid)


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
                report: IndexReport, items: Mapping[str, str] | None = None) -> list[_Plan]:
    """The images still to index and their windows not yet committed; images that cannot be
    used are listed as failures (recorded in the store at the end of a run that indexed
    something), images already done listed in the report. `items` names the STAC item of
    an image, by the path it is recorded under."""
    plans = []
    for f in files:
        try:
            plan = _plan_one(f, store, bands, items or {})
        except InputError as exc:
            report.failed.append((exc.path, exc.reason))
            continue
        if plan is None:
            report.already_done.append(str(f))
        else:
            plans.append(plan)
    return plans


def _plan_one(path: str | Path, store: Store, bands: Sequence[int] | None,
              items: Mapping[str, str]) -> _Plan | None:
    size = store.tile_size
    with open_image(path, bands=bands) as src:
        info = src.info
        if info.path in items:
            info = replace(info, item=items[info.path])
        if info.width < size or info.height < size:
            raise InputError(path, f"image is {info.width}x{info.height} px, smaller than "
                                   f"one {size} px tile")
        row = store.image(info.path)
        if row is not None and row["status"] == "done":
            old: ImageInfo = row["info"]
            if (old.size_bytes, old.mtime) != (info.size_bytes, info.mtime):
                raise InputError(path, "changed since it was indexed; index it into a new "
                                       "store")
            return None
        if row is not None:
            info = _resume_info(info, row["info"])
        done = store.done_windows(row["id"]) if row else set()
        windows = [w for w in tile_grid(info.width, info.height, size, store.stride)
                   if (w.col_off, w.row_off) not in done]
        windows = _drop_empty(src, windows, size, 1.0 - store.max_invalid)
    if not windows and not done:
        raise InputError(path, f"no tile has at least {1.0 - store.max_invalid:.0%} valid "
                               "pixels (empty or fully masked image?)")
    return _Plan(info, windows)


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
    """Keep the bands and stretch of a partly indexed image so its tiles stay comparable."""
    return ImageInfo(**{**new.__dict__, "bands": old.bands, "stretch": old.stretch})
