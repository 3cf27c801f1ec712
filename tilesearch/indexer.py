"""Indexing: images -> tiles -> fingerprints -> store, resumable and tolerant of bad files."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tilesearch.errors import InputError, StoreError
from tilesearch.models.base import Fingerprinter
from tilesearch.raster import RasterSource, find_images, open_image
from tilesearch.records import ImageInfo, Tile
from tilesearch.store import Store
from tilesearch.tiling import Window, batched, coarse_fractions, tile_grid

T = TypeVar("T")
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
    return Store.create(p, model.identity, tile_size=tile_size or 256, stride=stride or 128,
                        max_invalid=0.5 if max_invalid is None else max_invalid)


def _check_setting(store: Store, key: str, value: float | None) -> None:
    if value is not None and value != store.manifest[key]:
        raise StoreError(f"{store.path}: store was made with {key}={store.manifest[key]}, "
                         f"not {value}; leave it unset to append, or index into a new store")


def index_images(paths: Iterable[str | Path], store: Store, model: Fingerprinter, *,
                 bands: Sequence[int] | None = None, batch_size: int = 64,
                 progress: Callable[[int], Progress] | None = None,
                 readers: int = 1) -> IndexReport:
    """Fingerprint every image under `paths` into `store`; bad files are reported, not fatal.

    Returns a report whose `indexed` lists (path, tiles added by this run). `readers` threads
    read and decode batches ahead of the model (one keeps a CPU model fed; a GPU needs more),
    each with its own open dataset; batches reach the model in order.

    `progress`, when given, is called once with the total number of tile windows to process
    and returns the callback that is then called after each batch.
    """
    start = time.perf_counter()
    report = IndexReport(store=str(store.path))
    files, bad_paths = find_images(paths)
    for err in bad_paths:
        report.failed.append((err.path, err.reason))
    given = len(report.failed)
    plans = plan_images(files, store, bands, report)
    tick = progress(sum(len(p.windows) for p in plans)) if progress else None
    for plan in plans:
        _index_one(plan, store, model, batch_size, tick, report, readers)
    record_failures(store, report, report.failed[given:])
    report.seconds = time.perf_counter() - start
    return report


def record_failures(store: Store, report: IndexReport,
                    failed: list[tuple[str, str]]) -> None:
    """Record `failed` images in the store (a later run retries them), only when the run
    indexed something: a run that indexed nothing leaves the store as it was."""
    if report.ok:
        for path, reason in failed:
            store.record_failure(path, reason)


def plan_images(files: list[Path], store: Store, bands: Sequence[int] | None,
                report: IndexReport) -> list[_Plan]:
    """The images still to index and their windows not yet committed; images that cannot be
    used are listed as failures (recorded in the store at the end of a run that indexed
    something), images already done listed in the report."""
    plans = []
    for f in files:
        try:
            plan = _plan_one(f, store, bands)
        except InputError as exc:
            report.failed.append((exc.path, exc.reason))
            continue
        if plan is None:
            report.already_done.append(str(f))
        else:
            plans.append(plan)
    return plans


def _plan_one(path: Path, store: Store, bands: Sequence[int] | None) -> _Plan | None:
    size = store.tile_size
    with open_image(path, bands=bands) as src:
        info = src.info
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


def _index_one(plan: _Plan, store: Store, model: Fingerprinter, batch_size: int,
               tick: Progress | None, report: IndexReport, readers: int = 1) -> None:
    """Index one image into `store`, adding what happened to `report`. The image is
    registered with its first tiles: one failing before any tile changes nothing."""
    info = plan.info
    row = store.image(info.path)
    image_id = None
    added = 0
    try:
        for n_windows, kept, pixels in read_batches(info, plan.windows, batch_size,
                                                    1.0 - store.max_invalid, readers):
            if kept:
                image_id = store.begin_image(info) if image_id is None else image_id
                added += len(store.append(image_id, kept, model.embed(pixels)))
            if tick:
                tick(n_windows, len(report.failed))
        if image_id is None and row is not None and store.tile_count(row["id"]):
            image_id = store.begin_image(info)  # resumed: its tiles were all committed
        if image_id is None:
            raise InputError(info.path, f"no tile has at least {1.0 - store.max_invalid:.0%} "
                                        "valid pixels (empty or fully masked image?)")
    except InputError as exc:
        report.failed.append((exc.path, exc.reason))
        report.tiles_added += added
        known = image_id if image_id is not None else (row["id"] if row else None)
        if known is not None and (have := store.tile_count(known)):
            report.partial.append((info.path, have))
        if tick:
            tick(0, len(report.failed))
        return
    store.finish_image(image_id)
    report.indexed.append((info.path, added))
    report.tiles_added += added


Batch = tuple[int, list[Tile], np.ndarray]


def read_batches(info: ImageInfo, windows: list[Window], batch_size: int, keep_from: float,
                 readers: int = 1) -> Iterator[Batch]:
    """(windows read, tiles kept, their stacked pixels) per batch, in order, read ahead by
    one background thread (`readers` 1) or a pool of `readers` threads."""
    if readers <= 1:
        with open_image(info.path, bands=info.bands, stretch=info.stretch) as src:
            yield from prefetch(_read(src, windows, batch_size, keep_from))
        return
    local = threading.local()
    opened: list[RasterSource] = []

    def read(batch: list[Window]) -> Batch:
        if not hasattr(local, "src"):
            local.src = open_image(info.path, bands=info.bands, stretch=info.stretch)
            opened.append(local.src)
        return next(_read(local.src, batch, len(batch), keep_from))

    pending: deque[Future[Batch]] = deque()
    pool = ThreadPoolExecutor(readers, thread_name_prefix="tilesearch-reader")
    try:
        for batch in batched(windows, batch_size):
            pending.append(pool.submit(read, batch))
            if len(pending) > readers:  # bounded: at most readers + 1 batches in memory
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
        for src in opened:
            src.close()


def _read(src: RasterSource, windows: list[Window], batch_size: int,
          keep_from: float) -> Iterator[tuple[int, list[Tile], np.ndarray]]:
    """Batches of (windows read, tiles kept, their stacked pixels); runs in the reader thread."""
    for batch in batched(windows, batch_size):
        tiles = src.read_tiles(batch)
        kept = [t for t in tiles if t.valid_fraction >= keep_from - 1e-9]
        pixels = np.stack([t.pixels for t in kept]) if kept else np.empty((0, 0, 0, 3), np.uint8)
        yield len(batch), kept, pixels


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` in a background thread, `depth` ahead, re-raising its errors here."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(("item", item))
            q.put(("end", None))
        except BaseException as exc:
            q.put(("error", exc))

    thread = threading.Thread(target=work, daemon=True, name="tilesearch-reader")
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
