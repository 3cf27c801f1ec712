"""Indexing on a Ray cluster: the local pipeline's stages, spread over workers.

The driver (the process running ``tilesearch index --cluster ray``) plans exactly as the local
path does (:func:`tilesearch.ingest.plan_images`: images found, done images skipped, the
windows a partly indexed image still lacks), cuts each image's windows into *shards* of
``shard_size`` consecutive windows and hands them to Ray Data. ``map_batches`` with a callable
class on an actor pool (``ActorPoolStrategy``) keeps one warm model per worker; each call reads
its shard's windows from the image (rasterio through :mod:`tilesearch.raster`, so local paths,
a shared file system or GDAL's ``/vsis3/`` and ``s3://`` paths alike) and fingerprints them.

Why workers return fingerprints to the driver instead of writing shard files: the store is a
single-writer append log (vectors fsynced, then rows committed in one SQLite transaction), and
a shard (256 windows x 1904 floats = 1.9 MB) is cheap to ship. The driver appends each shard
through :meth:`Store.append` in one transaction, so a shard is in the store entirely or not at
all; no shard files are left to clean up after a crash, and no shared writable directory is
needed. Results are consumed in plan order (``preserve_order``), so a cluster run gives the
same tile ids as a local run. A killed run resumes like a local one: committed windows are
skipped when planning, so nothing is fingerprinted or stored twice.

Faults: a shard whose image fails to read is reported back, its image recorded as failed
(shards already committed stay, a rerun retries the rest); a worker that dies is restarted by
Ray and its shard retried; if the Ray job itself fails, every image not finished is recorded as
failed and listed, and committed shards stay.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import InputError, MissingDependencyError, ModelError
from tilesearch.ingest.plan import (
    IndexReport,
    Progress,
    Scaling,
    plan_images,
    record_failures,
)
from tilesearch.ingest.reading import batches_of, layout_of, model_for, read_batch
from tilesearch.models import Fingerprinter
from tilesearch.options import STRIDE
from tilesearch.raster import RasterSource, find_images, locate_tiles, open_image
from tilesearch.records import ImageInfo, Tile
from tilesearch.store import Store
from tilesearch.tiling import Window

log = logging.getLogger(__name__)

SHARD_SIZE = 256
"""Windows per shard: one Ray Data row, one store transaction."""
_NO_PIXELS = np.empty((0, 0, 3), np.uint8)


def import_ray() -> Any:
    """The ray module, or MissingDependencyError naming the extra to install."""
    try:
        import ray
        import ray.data  # ray without the data extra lacks its dependencies
    except ImportError as exc:
        raise MissingDependencyError("ray[data]", "cluster",
                                     purpose="indexing on a Ray cluster") from exc
    return ray


def use_cluster(cluster: str) -> bool:
    """Whether `cluster` (``local``, ``ray`` or ``auto``: ray when RAY_ADDRESS is set) means Ray."""
    if cluster not in ("local", "ray", "auto"):
        raise ModelError(f"unknown cluster mode {cluster!r}; choose local, ray or auto")
    return cluster == "ray" or (cluster == "auto" and bool(os.environ.get("RAY_ADDRESS")))


@dataclass(frozen=True)
class Shard:
    """Consecutive windows of one image, fingerprinted by one worker call."""

    number: int
    info: ImageInfo
    windows: list[Window]
    step: int
    """Image px between the image's tiles (what blocks of tiles are cut by)."""

    def to_row(self) -> dict[str, Any]:
        offsets = np.asarray([(w.col_off, w.row_off) for w in self.windows], np.int64)
        return {"shard": self.number, "info": json.dumps(self.info.to_dict()),
                "offsets": offsets.tobytes(), "span": self.windows[0].width,
                "step": self.step}


def make_shards(infos_windows: Sequence[tuple[ImageInfo, list[Window]]],
                size: int = SHARD_SIZE, step_of: Callable[[ImageInfo], int] | None = None
                ) -> list[Shard]:
    """Each image's windows in runs of at most `size`, in plan order; `step_of` gives the
    image px between an image's tiles (default: half a tile)."""
    shards: list[Shard] = []
    for info, windows in infos_windows:
        if not windows:
            continue
        step = step_of(info) if step_of else windows[0].width // 2
        for i in range(0, len(windows), size):
            shards.append(Shard(len(shards), info, windows[i:i + size], step))
    return shards


class ShardFingerprinter:
    """The Ray Data callable class: one model per actor, kept warm across shards."""

    def __init__(self, make_model: Callable[[], Fingerprinter], identity_dict: dict[str, Any],
                 tile_size: int, keep_from: float, batch_size: int, stride: int = STRIDE
                 ) -> None:
        self.model = make_model()
        if self.model.identity.to_dict() != identity_dict:
            raise ModelError(f"worker model {self.model.identity} differs from the store's "
                             f"{identity_dict}")
        self.runner = model_for(self.model, stride)
        self.tile_size = tile_size
        self.stride = stride
        self.keep_from = keep_from
        self.batch_size = batch_size
        self._src: RasterSource | None = None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(int(n), str(info), bytes(off), int(span), int(step))
                for n, info, off, span, step in
                zip(batch["shard"], batch["info"], batch["offsets"], batch["span"],
                    batch["step"], strict=True)]
        return {key: np.asarray([r[key] for r in rows], dtype=object if key != "shard"
                                else np.int64) for key in rows[0]}

    def _one(self, number: int, info_json: str, offsets: bytes, span: int, step: int
             ) -> dict[str, Any]:
        info = ImageInfo.from_dict(json.loads(info_json))
        windows = [Window(int(c), int(r), span, span)
                   for c, r in np.frombuffer(offsets, np.int64).reshape(-1, 2)]
        try:
            kept, vectors = self._fingerprint(info, windows, step)
        except Exception as exc:  # reported per image; the driver records the failure
            reason = exc.reason if isinstance(exc, InputError) else f"worker error: {exc}"
            return {"shard": number, "offsets": b"", "valid": b"", "vectors": b"",
                    "error": reason.splitlines()[0] if reason else type(exc).__name__}
        offs = np.asarray([(t.window.col_off, t.window.row_off) for t in kept], np.int64)
        valid = np.asarray([t.valid_fraction for t in kept], np.float64)
        return {"shard": number, "offsets": offs.tobytes(), "valid": valid.tobytes(),
                "vectors": np.ascontiguousarray(vectors, np.float32).tobytes(), "error": ""}

    def _fingerprint(self, info: ImageInfo, windows: list[Window], step: int
                     ) -> tuple[list[Tile], np.ndarray]:
        """The shard's kept tiles and fingerprints, read as local indexing reads them (a
        block cut by the shard's end is read whole; only this shard's tiles are kept)."""
        src = self._open(info)
        layout = layout_of(self.model, self.tile_size, self.stride, step)
        kept: list[Tile] = []
        parts = []
        for batch in batches_of(info, windows, layout, self.batch_size):
            _, tiles, pixels, take = read_batch(src, batch, layout, self.keep_from)
            if tiles:
                out = self.runner.embed(pixels)
                parts.append(out if take is None else out[take])
                kept.extend(tiles)
        dim = self.model.identity.dim
        return kept, np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)

    def _open(self, info: ImageInfo) -> RasterSource:
        """The image's open source, reused while consecutive shards come from it."""
        if self._src is None or self._src.path != info.path:
            if self._src is not None:
                self._src.close()
            self._src = open_image(info.path, bands=info.bands, stretch=info.stretch)
        return self._src


def _tiles(info: ImageInfo, size: int, result: dict[str, Any]) -> list[Tile]:
    """Tile records (metadata, no pixels) for a shard's result, located like local reads;
    `size` is the side of its windows in image px."""
    offsets = np.frombuffer(result["offsets"], np.int64).reshape(-1, 2)
    valid = np.frombuffer(result["valid"], np.float64)
    tiles = []
    for (c, r), v in zip(offsets, valid, strict=True):
        t = Tile(info.path, Window(int(c), int(r), size, size), _NO_PIXELS, _NO_PIXELS[..., 0])
        t.__dict__["valid_fraction"] = float(v)  # the worker's value; pixels stay there
        tiles.append(t)
    locate_tiles(info, tiles)
    return tiles


def index_on_ray(paths: Sequence[str | Path], store: Store,
                 make_model: Callable[[], Fingerprinter], *, bands: Sequence[int] | None = None,
                 batch_size: int = 64, workers: int | None = None, num_gpus: float = 0.0,
                 shard_size: int = SHARD_SIZE, address: str | None = None,
                 progress: Callable[[int], Progress] | None = None,
                 items: Mapping[str, str] | None = None,
                 scaling: Scaling | None = None) -> IndexReport:
    """Fingerprint every image under `paths` into `store` on a Ray cluster.

    `make_model` is a picklable function returning the fingerprinter (called once per
    worker); its identity must be the store's. `workers` is the actor pool size (default: the
    cluster's CPUs, or GPUs when `num_gpus` is set). Connects to `address` (default
    ``$RAY_ADDRESS``, else a local cluster) unless Ray is already initialised.
    """
    import time

    ray = import_ray()
    start = time.perf_counter()
    report = IndexReport(store=str(store.path))
    files, bad_paths = find_images(paths)
    report.failed.extend((e.path, e.reason) for e in bad_paths)
    given = len(report.failed)
    plans = plan_images(files, store, bands, report, items, scaling)
    unusable = report.failed[given:]
    tick = progress(sum(len(p.windows) for p in plans)) if progress else None
    if not plans:
        record_failures(store, report, unusable)
        report.seconds = time.perf_counter() - start
        return report
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    shards = make_shards([(p.info, p.windows) for p in plans], shard_size,
                         lambda info: store.tile_span(info)[1])
    ids = {p.info.path: store.begin_image(p.info) for p in plans}
    left = {p.info.path: 0 for p in plans}
    for s in shards:
        left[s.info.path] += 1
    results = _run(ray, shards, make_model, store, batch_size, workers, num_gpus)
    _commit(results, shards, store, ids, left, report, tick)
    record_failures(store, report, unusable)
    report.seconds = time.perf_counter() - start
    return report


def _run(ray: Any, shards: list[Shard], make_model: Callable[[], Fingerprinter], store: Store,
         batch_size: int, workers: int | None, num_gpus: float) -> Iterator[dict[str, Any]]:
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # tilesearch shows its own, for every mode
    resources = ray.cluster_resources()
    size = workers or max(1, int(resources.get("GPU" if num_gpus else "CPU", 1)))
    size = min(size, len(shards))  # an actor without a shard would only cost start-up
    ds = ray.data.from_items([s.to_row() for s in shards], override_num_blocks=len(shards))
    out = ds.map_batches(
        ShardFingerprinter, batch_size=1, batch_format="numpy",
        compute=ActorPoolStrategy(size=size), num_cpus=0 if num_gpus else 1, num_gpus=num_gpus,
        fn_constructor_args=(make_model, store.identity.to_dict(), store.tile_size,
                             1.0 - store.max_invalid, batch_size, store.stride),
    )  # Ray Data's actors restart when they die and retry their calls (its defaults)
    return out.iter_rows()


def _commit(results: Iterator[dict[str, Any]], shards: list[Shard], store: Store,
            ids: dict[str, int], left: dict[str, int], report: IndexReport,
            tick: Progress | None) -> None:
    """Append each shard's fingerprints as it arrives; finish or fail each image."""
    added = dict.fromkeys(ids, 0)
    failed: dict[str, str] = {}
    try:
        for result in results:
            shard = shards[int(result["shard"])]
            path = shard.info.path
            if result["error"]:
                failed.setdefault(path, str(result["error"]))
            else:  # kept even when another shard of the image failed: a rerun does the rest
                tiles = _tiles(shard.info, shard.windows[0].width, result)
                vectors = np.frombuffer(result["vectors"], np.float32)
                added[path] += len(store.append(ids[path], tiles,
                                                vectors.reshape(len(tiles), store.dim)))
            left[path] -= 1
            if left[path] == 0:
                _settle(store, path, ids[path], added[path], failed.get(path), report)
            if tick:
                tick(len(shard.windows), len(report.failed))
    except Exception as exc:
        log.error("the Ray job failed: %s", exc)
        for path, n in left.items():
            if n > 0:
                _settle(store, path, ids[path], added[path], f"cluster job failed: {exc}",
                        report)
    report.tiles_added = sum(added.values())


def _settle(store: Store, path: str, image_id: int, added: int, error: str | None,
            report: IndexReport) -> None:
    if error is None and store.tile_count(image_id) == 0:
        error = (f"no tile has at least {1.0 - store.max_invalid:.0%} valid pixels "
                 "(empty or fully masked image?)")
    if error is not None:
        store.record_failure(path, error)
        report.failed.append((path, error))
        if (kept := store.tile_count(image_id)) > 0:
            report.partial.append((path, kept))
        return
    store.finish_image(image_id)
    report.indexed.append((path, added))
