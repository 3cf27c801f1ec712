"""Indexing on this machine: images -> tiles -> fingerprints -> store, resumable and tolerant of
bad files; reading runs ahead of the model in background threads."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tilesearch.errors import InputError
from tilesearch.ingest.plan import (
    IndexReport,
    Progress,
    Scaling,
    _Plan,
    plan_images,
    record_failures,
)
from tilesearch.ingest.reading import Batch, Layout, batches_of, layout_of, model_for, read_batch
from tilesearch.models import Fingerprinter
from tilesearch.raster import RasterSource, find_images, open_image
from tilesearch.records import ImageInfo
from tilesearch.store import Store
from tilesearch.tiling import Window

T = TypeVar("T")


def index_images(paths: Iterable[str | Path], store: Store, model: Fingerprinter, *,
                 bands: Sequence[int] | None = None, batch_size: int = 64,
                 progress: Callable[[int], Progress] | None = None,
                 readers: int = 1, items: Mapping[str, str] | None = None,
                 scaling: Scaling | None = None) -> IndexReport:
    """Fingerprint every image under `paths` into `store`; bad files are reported, not fatal.

    Returns a report whose `indexed` lists (path, tiles added by this run). `readers` threads
    read and decode batches ahead of the model (one keeps a CPU model fed; a GPU needs more),
    each with its own open dataset; batches reach the model in order. `scaling` says how
    images meet the store's ground resolution.

    `progress`, when given, is called once with the total number of tile windows to process
    and returns the callback that is then called after each batch.
    """
    start = time.perf_counter()
    report = IndexReport(store=str(store.path))
    files, bad_paths = find_images(paths)
    for err in bad_paths:
        report.failed.append((err.path, err.reason))
    given = len(report.failed)
    runner = model_for(model, store.stride)  # a block graph is compiled before any planning
    plans = plan_images(files, store, bands, report, items, scaling)
    tick = progress(sum(len(p.windows) for p in plans)) if progress else None
    for plan in plans:
        _index_one(plan, store, model, runner, batch_size, tick, report, readers)
    record_failures(store, report, report.failed[given:])
    report.seconds = time.perf_counter() - start
    return report


def _index_one(plan: _Plan, store: Store, model: Fingerprinter, runner: Fingerprinter,
               batch_size: int, tick: Progress | None, report: IndexReport,
               readers: int = 1) -> None:
    """Index one image into `store` with `runner` (`model_for(model)`), adding what happened
    to `report`. The image is registered with its first tiles: one failing before any tile
    changes nothing."""
    info = plan.info
    row = store.image(info.path)
    image_id = None
    added = 0
    try:
        layout = layout_of(model, store.tile_size, store.stride, store.tile_span(info)[1])
        batches = read_batches(info, plan.windows, layout, batch_size,
                               1.0 - store.max_invalid, readers)
        for (n_windows, kept, _, _), fingerprints in fingerprinted(runner, batches):
            if kept:
                image_id = store.begin_image(info) if image_id is None else image_id
                added += len(store.append(image_id, kept, fingerprints))
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


def fingerprinted(model: Fingerprinter, batches: Iterable[Batch]
                  ) -> Iterator[tuple[Batch, np.ndarray]]:
    """Each batch with its kept tiles' fingerprints, in order. A model with `embed_batches`
    (OpenVINO) takes the next batch before giving the last one's fingerprints, so that its
    streams never wait at a batch's end; an error reading a batch is raised after every batch
    before it is given."""
    for batch, out in _run(model, batches):
        yield batch, out if batch[3] is None or not len(out) else out[batch[3]]


def _run(model: Fingerprinter, batches: Iterable[Batch]) -> Iterator[tuple[Batch, np.ndarray]]:
    stream = getattr(model, "embed_batches", None)
    if stream is None:
        for batch in batches:
            yield batch, model.embed(batch[2]) if batch[1] else np.zeros((0, 0), np.float32)
        return
    held: deque[Batch] = deque()
    failed: list[Exception] = []

    def pixels() -> Iterator[np.ndarray]:
        try:
            for batch in batches:
                held.append(batch)
                yield batch[2]
        except Exception as exc:  # raised below, once the batches before it are stored
            failed.append(exc)

    for fingerprints in stream(pixels()):
        yield held.popleft(), fingerprints
    if failed:
        raise failed[0]


def read_batches(info: ImageInfo, windows: list[Window], layout: Layout, batch_size: int,
                 keep_from: float, readers: int = 1) -> Iterator[Batch]:
    """The batches of `windows` (`reading.Batch`) as `layout` says the model takes them, in
    order, read ahead by one background thread (`readers` 1) or a pool of `readers`
    threads."""
    units = list(batches_of(info, windows, layout, batch_size))
    if readers <= 1:
        with open_image(info.path, bands=info.bands, stretch=info.stretch) as src:
            yield from prefetch(read_batch(src, batch, layout, keep_from) for batch in units)
        return
    local = threading.local()
    opened: list[RasterSource] = []

    def read(batch: list[Any]) -> Batch:
        if not hasattr(local, "src"):
            local.src = open_image(info.path, bands=info.bands, stretch=info.stretch)
            opened.append(local.src)
        return read_batch(local.src, batch, layout, keep_from)

    pending: deque[Future[Batch]] = deque()
    pool = ThreadPoolExecutor(readers, thread_name_prefix="tilesearch-reader")
    try:
        for batch in units:
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
