"""The Python API: everything the CLI does is one of these calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import ann
from tilesearch.errors import QueryError, StoreError
from tilesearch.ingest import IndexReport, Progress, index_images, open_or_create_store
from tilesearch.models import GPU_BATCH, Fingerprinter
from tilesearch.options import (
    ALPHA,
    CPU_BATCH,
    TILE_SIZE,
    IndexOptions,
    SearchOptions,
    with_changes,
)
from tilesearch.quality import RetrievalReport, TransformReport
from tilesearch.retrieval import (
    DEFAULT_METRIC,
    Query,
    SearchFilter,
    SearchResult,
    allowed_mask,
    check_tile_id,
    combine_examples,
    default_raw_weight,
    fingerprints,
    lonlat_query,
    nearest,
    raw_fingerprints,
    tile_query,
)
from tilesearch.retrieval import (
    image_query as image_query_of,
)
from tilesearch.store import CheckReport, Store, Warmer
from tilesearch.store import check as check_store
from tilesearch.store import warm as warm_store


def load_fingerprinter(model: str | None = None, *, weights: str | Path | None = None,
                       runtime: str = "auto", tile_size: int = TILE_SIZE,
                       threads: int | None = None, recipe: str | None = None,
                       device: str = "auto") -> Fingerprinter:
    """A fingerprint model from the registry (default: `models.DEFAULT_MODEL`, default recipe)."""
    from tilesearch.models import DEFAULT_MODEL, DEFAULT_RECIPE, load_model

    return load_model(model or DEFAULT_MODEL, weights=weights, runtime=runtime,
                      tile_size=tile_size, threads=threads, recipe=recipe or DEFAULT_RECIPE,
                      device=device)


def store_fingerprinter(store: str | Path | Store, *, weights: str | Path | None = None,
                        runtime: str = "auto", threads: int | None = None) -> Fingerprinter:
    """The model, weights and recipe a store was made with, loaded (to reuse across image
    searches: `search(..., model=)`), with `threads` inference threads (default: all)."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        return load_fingerprinter(s.identity.name, weights=weights, runtime=runtime,
                                  tile_size=s.tile_size, recipe=s.identity.recipe,
                                  threads=threads)
    finally:
        if s is not store:
            s.close()


def index(paths: str | Path | Iterable[str | Path], store: str | Path,
          options: IndexOptions | None = None, **changes: Any) -> IndexReport:
    """Tile and fingerprint every image under `paths` into the store at `store`.

    Creates the store, or appends to it (skipping images already done and resuming partly
    indexed ones). Unreadable or unusable images are listed in the report, not raised.
    `options` (an `IndexOptions`; its fields may be given as keywords instead, e.g.
    ``progress=True``): `device` is cpu, cuda or auto (cuda when there is one); `cluster` is
    local, ray or auto (ray when $RAY_ADDRESS is set), `workers` the Ray actor pool size. The
    batch size defaults to `options.CPU_BATCH` tiles on a CPU and `models.GPU_BATCH` on a GPU,
    `readers` (threads reading and decoding ahead of the model) to 1 on a CPU and up to 8 on a
    GPU. A run that adds no tile to a new store leaves no store behind.
    """
    opts = with_changes(options or IndexOptions(), changes)
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if Path(store).is_file():
        raise StoreError(f"{store}: is a file, not a store folder; name a folder for the "
                         "store")
    is_new, existed = not (Path(store) / "manifest.json").exists(), Path(store).exists()
    opts = opts if is_new else _store_defaults(opts, store)
    from tilesearch.ingest import import_ray, use_cluster

    on_ray = use_cluster(opts.cluster)
    if on_ray:
        import_ray()  # fail before any work when the extra is missing
    report = None
    try:
        report = _run_index(paths, store, opts, on_ray)
    finally:
        if is_new and (report is None or not report.tiles_added):
            _remove_new_store(Path(store), existed)
    return report


def _store_defaults(opts: IndexOptions, store: str | Path) -> IndexOptions:
    """`opts` with the model, recipe and tile size of the existing store where unset."""
    with Store.open(store) as s:
        return with_changes(opts, {"model": opts.model or s.identity.name,
                                   "recipe": opts.recipe or s.identity.recipe,
                                   "tile_size": opts.tile_size or s.tile_size})


def _run_index(paths: list[str | Path], store: str | Path, opts: IndexOptions,
               on_ray: bool) -> IndexReport:
    threads = 1 if on_ray and opts.threads is None else opts.threads  # one per Ray worker
    load = partial(load_fingerprinter, opts.model, weights=opts.weights, runtime=opts.runtime,
                   tile_size=opts.tile_size or TILE_SIZE, threads=threads, recipe=opts.recipe,
                   device=opts.device)
    fp = load(device="cpu") if on_ray else load()  # on Ray the driver needs the identity only
    on_gpu = getattr(fp, "device", "cpu") == "cuda"
    bar = progress_bar if opts.progress else None
    with open_or_create_store(store, fp, tile_size=opts.tile_size, stride=opts.stride,
                              max_invalid=opts.max_invalid) as s:
        if on_ray:
            from tilesearch.ingest import index_on_ray

            gpu = opts.device == "cuda"  # each worker then takes one GPU
            return index_on_ray(paths, s, load, bands=opts.bands,
                                batch_size=opts.batch_size or (GPU_BATCH if gpu else CPU_BATCH),
                                workers=opts.workers, num_gpus=1.0 if gpu else 0.0,
                                progress=bar)
        readers = opts.readers or (min(8, os.cpu_count() or 1) if on_gpu else 1)
        return index_images(paths, s, fp, bands=opts.bands, progress=bar, readers=readers,
                            batch_size=opts.batch_size or (GPU_BATCH if on_gpu else CPU_BATCH))


def _remove_new_store(path: Path, existed: bool) -> None:
    """Undo the creation of a store that got no tile (a failed command leaves nothing); an
    empty folder the user made stays, emptied."""
    import shutil

    if not (path / "manifest.json").is_file():
        return
    with Store.open(path) as s:
        if s.count:
            return
    shutil.rmtree(path, ignore_errors=True)
    if existed:
        path.mkdir(exist_ok=True)


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="tile", desc=desc, file=sys.stderr, smoothing=0.1,
               dynamic_ncols=True)
    if total == 0:
        bar.close()
    return bar


def progress_bar(total: int) -> Progress:
    """A tqdm progress bar over tile windows (rate and ETA), as a progress callback."""
    bar = _bar(total, "indexing")

    def tick(done: int, failed: int) -> None:
        if failed:
            bar.set_postfix(skipped=failed, refresh=False)
        bar.update(done)
        if bar.n >= bar.total:
            bar.close()

    return tick


def search(store: str | Path | Store, *, tile: int | None = None,
           image: str | Path | np.ndarray | Query | None = None,
           lonlat: tuple[float, float] | None = None,
           positives: Sequence[int] = (), negatives: Sequence[int] = (),
           where: SearchFilter | None = None, model: Fingerprinter | None = None,
           weights: str | Path | None = None, runtime: str = "auto",
           options: SearchOptions | None = None, **changes: Any) -> SearchResult:
    """The k tiles most like a query: a tile id, an image file, a lon/lat point, or several
    positive tile ids ("more like these"), optionally with negative ones ("not like those").
    An image is a file, RGB pixels (H, W, 3) uint8, or a query `image_query` made already
    (to fingerprint outside a lock that the search itself needs, as the web app does).
    `where` restricts the search to an area or to some images (`retrieval.SearchFilter`). An
    image query uses `model` when given (it must be the store's, see `store_fingerprinter`)
    instead of loading the store's model (`weights`, `runtime`) for this one search.

    `options` (a `SearchOptions`; its fields may be given as keywords instead, e.g. ``k=5``):
    by default the query tiles, the example tiles and every tile overlapping them are left out
    (`exclude_self`), and a hit that overlaps a better-ranked hit is suppressed
    (`suppress_overlaps`), so the k hits are k different places. `expand` > 0 replaces the
    query by its alpha query expansion over that many neighbours; None means 0, except for an
    image query on an augmented store, which is expanded by the augmentation's k
    (`tilesearch.ann.augment`). `offset` pages through a long ranking (hits ``offset + 1 ..
    offset + k``). The store's search index answers when one was built (`build_index`),
    unless `exact`. `raw_weight` > 0 (with augmentation or expansion) ranks by that share of
    the raw distance and the rest of the augmented or expanded one (`retrieval.mix_raw`);
    None means `retrieval.RAW_WEIGHT` on an augmented store keeping its raw fingerprints.
    """
    opts = with_changes(options or SearchOptions(), changes)
    by_tiles = tile is not None or bool(positives)
    if (image is not None) + (lonlat is not None) + by_tiles != 1:
        raise QueryError("give one query: a tile id (and/or positives), an image file, or lon/lat")
    if negatives and not by_tiles:
        raise QueryError("negative examples go with a tile id or positive tile ids")
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        if image is not None and model is None and not isinstance(image, Query):
            model = store_fingerprinter(s, weights=weights, runtime=runtime)
        q = _query(s, tile, image, lonlat, list(positives), list(negatives), model)
        return _ranked(s, q, opts, image is not None, tile, list(positives), list(negatives),
                       where)
    finally:
        if s is not store:
            s.close()


def _ranked(s: Store, q: Query, opts: SearchOptions, by_image: bool, tile: int | None,
            positives: list[int], negatives: list[int],
            where: SearchFilter | None) -> SearchResult:
    """The search of `q` with `opts`: every labelled tile (query, positives, negatives) is
    known, so none comes back as a hit."""
    expand, alpha = opts.expand, opts.alpha
    aug = s.augmentation
    if expand is None and aug and by_image:  # into the store's augmented space
        expand, alpha = int(aug["k"]), float(aug["alpha"])
    labelled = ([tile] if tile is not None else []) + positives + negatives
    examples = ([q.tile] if q.tile else []) + (s.tiles(sorted(set(labelled))) if labelled
                                               else [])
    raw_weight = default_raw_weight(s) if opts.raw_weight is None else opts.raw_weight
    raw = _raw_query(s, q, tile, positives, negatives) if raw_weight else None
    hits = nearest(s, q.vector, k=opts.offset + opts.k, metric=opts.metric,
                   exclude=examples if opts.exclude_self else None,
                   suppress_overlaps=opts.suppress_overlaps, expand=expand or 0, alpha=alpha,
                   allowed=allowed_mask(s, where) if where else None, exact=opts.exact,
                   raw_weight=raw_weight, raw_query=raw)
    return SearchResult(query=q, hits=hits[opts.offset:], metric=opts.metric,
                        store=str(s.path))


def _query(s: Store, tile: int | None, image: str | Path | np.ndarray | Query | None,
           lonlat: tuple[float, float] | None, positives: list[int], negatives: list[int],
           model: Fingerprinter | None) -> Query:
    if lonlat is not None:
        return lonlat_query(s, *lonlat)
    if isinstance(image, Query):
        return image
    if image is not None:
        assert model is not None
        return image_query_of(s, image, model)  # checks the model against the store
    if not positives and not negatives and tile is not None:
        return tile_query(s, tile)
    pos = ([tile] if tile is not None else []) + positives
    for i in pos + negatives:
        check_tile_id(s, i)
    vector = _examples(s, fingerprints, pos, negatives)
    desc = f"{len(pos)} positive(s)" + (f", {len(negatives)} negative(s)" if negatives else "")
    return Query(vector, desc, tile=s.tile(pos[0]) if len(pos) == 1 else None)


def _raw_query(s: Store, q: Query, tile: int | None, positives: list[int],
               negatives: list[int]) -> Any:
    """The query as the model made it: never augmented (an image query's vector is raw)."""
    if q.tile is not None and tile is None and not positives:  # a lon/lat point's tile
        tile = q.tile.tile_id
    pos = ([tile] if tile is not None else []) + positives
    return _examples(s, raw_fingerprints, pos, negatives) if pos else q.vector


def _examples(s: Store, lookup: Callable[[Store, list[int]], Any], positives: list[int],
              negatives: list[int]) -> Any:
    """One query vector from example tiles (`knn.combine_examples`) read by `lookup`."""
    return combine_examples(lookup(s, sorted(positives)),
                            lookup(s, sorted(negatives)) if negatives else None)


def info(store: str | Path | Store) -> dict[str, Any]:
    """Facts about a store: images, tiles, model, bytes on disk, compression ratio, coverage."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        images = s.images()
        done = [i for i in images if i["status"] == "done"]
        pixels = sum(i["info"].width * i["info"].height for i in done)
        pixel_bytes = pixels * 3 * 4
        size = s.bytes_on_disk()
        bbox = s.lonlat_extent()
        return {
            "store": str(s.path), "model": s.identity.to_dict(),
            "tile_size": s.tile_size, "stride": s.stride, "max_invalid": s.max_invalid,
            "images": len(done), "images_incomplete": len(images) - len(done),
            "tiles": s.count, "pixels": pixels, "bytes_on_disk": size,
            "bytes_per_tile": size / s.count if s.count else None,
            "compression_ratio": pixel_bytes / size if size and pixel_bytes else None,
            "lonlat_bbox": list(bbox) if bbox else None,
            "failures": [{"path": p, "reason": r} for p, r in s.failures()],
            "search_index": _index_facts(s, pixel_bytes),
            "augment": s.augmentation,
            "search_raw_weight": default_raw_weight(s),
        }
    finally:
        if s is not store:
            s.close()


def image_query(store: str | Path | Store, image: str | Path | np.ndarray, *,
                model: Fingerprinter | None = None) -> Query:
    """The query fingerprint of an image (a file, or RGB pixels (H, W, 3) uint8) resampled to
    the store's tile size, by `model` (default: the store's, loaded for this call); pass it
    to `search(image=)`."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        return image_query_of(s, image, model or store_fingerprinter(s))
    finally:
        if s is not store:
            s.close()


def check(store: str | Path, *, repair: bool = False) -> CheckReport:
    """Look a store over: manifest, SQLite's own check, file sizes, stored norms against
    their fingerprints, the search index's files. With `repair`, recover what can be:
    fingerprints lost from the end of the vector file (their tiles are forgotten, their
    images resume on the next `index`) and missing or wrong norms (recomputed)."""
    return check_store(store, repair=repair)


def warm(store: str | Path | Store, *, background: bool = True,
         budget: int | None = -1) -> Warmer:
    """Read `store`'s search files (index, finer codes, metadata, full vectors) into memory
    ahead of its queries, in a background thread by default (`tilesearch.store.warming`)."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        return warm_store(s, background=background, budget=budget)
    finally:
        if s is not store:
            s.close()


def _index_facts(s: Store, pixel_bytes: int) -> dict[str, Any] | None:
    entry = s.manifest.get("ann")
    if not entry:
        return None
    code = int(entry["code_bytes"])
    return {**entry, "tiles_not_indexed": s.count - int(entry["count"]),
            "full_vectors_from": s.full_from,
            "code_compression_ratio": pixel_bytes / (code * s.count) if s.count else None}


def build_index(store: str | Path, *, codec: str | None = None, nprobe: int | None = None,
                rebuild: bool = False, keep_full: bool = True, force: bool = False,
                augment: int | None = None, alpha: float = ALPHA,
                progress: bool = False) -> ann.BuildReport:
    """Build, extend or rebuild the store's approximate search index (see `tilesearch.ann`).

    Without `rebuild` an existing index is extended with the tiles appended since it was
    built. `keep_full=False` drops full-precision fingerprints of encoded tiles (smaller store,
    no exact re-ranking). Stores under `ann.EXACT_BELOW` tiles get none unless `force`.
    `augment` = k > 0 (re)computes database-side augmentation over k neighbours from other
    places (`tilesearch.ann.augment`), 0 removes it, None leaves it as it is."""
    from tilesearch.ann import augment as dba

    build = partial(ann.build, codec=codec, nprobe=nprobe, force=force)
    with Store.open(store, writable=True) as s:
        if augment == 0:
            dba.remove(s)
        elif augment is not None:
            build(s, rebuild=rebuild)  # candidates for the neighbour search
            tick = _count_bar(s.count, "augmenting") if progress else None
            dba.build(s, augment, alpha, progress=tick)
        return build(s, rebuild=rebuild, keep_full=keep_full)


OVERVIEW_FOLDER = "overviews"
"""Store subfolder for the overviews (VRT + .ovr) of images whose own folder is not writable."""


def build_overviews(store: str | Path,
                    echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Build external overviews for the store's images lacking them, so that `tilesearch serve`
    draws zoomed-out maps of big rasters fast (see `raster.build_overviews`).

    Returns one record per image: path, source (the file read for reduced reads), levels built
    (empty when it had overviews already or is small) and error (None, or why it failed)."""
    from tilesearch import raster
    from tilesearch.errors import InputError

    with Store.open(store) as s:
        paths = [im["info"].path for im in s.images() if im["status"] == "done"]
        folder = s.path / OVERVIEW_FOLDER
    out: list[dict[str, Any]] = []
    for path in paths:
        if echo:
            echo(f"overviews: {path}")
        try:
            source, levels = raster.build_overviews(path, folder)
            out.append({"path": path, "source": str(source), "levels": levels, "error": None})
        except InputError as exc:
            out.append({"path": path, "source": path, "levels": [], "error": exc.reason})
    return out


def evaluate(folder: str | Path, *, model: str | None = None,
             weights: str | Path | None = None, runtime: str = "auto",
             metric: str = DEFAULT_METRIC, expand: int = 0, alpha: float = ALPHA,
             tile_size: int = TILE_SIZE, recipe: str | None = None, augment: int = 0,
             raw_weight: float | None = None, progress: bool = False) -> RetrievalReport:
    """Retrieval quality on a labelled ``<class>/<image>`` folder: every image queries all the
    others, relevant = same class; mAP over all ranks and precision@1/5/10. `augment` = k > 0
    evaluates database-side augmentation over k neighbours (as `build_index(augment=k)`),
    `raw_weight` the mix with the raw distance (as `search(raw_weight=)`; None: as searches
    default to, `knn.RAW_WEIGHT` with augmentation, else 0)."""
    from tilesearch import quality as ev
    from tilesearch.ann import augment_set
    from tilesearch.retrieval import RAW_WEIGHT, blend, check_raw_weight

    if raw_weight is None:
        raw_weight = RAW_WEIGHT if augment else 0.0

    if augment and metric != "cosine":
        raise QueryError("augmentation compares unit vectors: use the cosine metric")
    check_raw_weight(raw_weight, metric)

    paths, labels = ev.labelled_images(folder)
    fp = load_fingerprinter(model, weights=weights, runtime=runtime, tile_size=tile_size,
                            recipe=recipe)
    tiles = ev.read_resized(paths, tile_size)
    tick = _count_bar(len(tiles), "fingerprinting") if progress else None
    raw = ev.embed_all(fp, tiles, progress=tick)
    vectors = augment_set(raw, augment, alpha) if augment else raw
    dist = ev.expanded_distances(vectors, metric, expand, alpha)
    if raw_weight and (augment or expand):
        dist = blend(ev.pairwise_distances(raw, "cosine"), dist, raw_weight)
    return ev.retrieval_metrics(dist, labels, metric)


def robustness(store: str | Path, *, samples: int = 100, seed: int = 0,
                     metric: str = DEFAULT_METRIC, weights: str | Path | None = None,
                     runtime: str = "auto", raw_weight: float | None = None,
                     progress: bool = False) -> TransformReport:
    """Label-free check: transformed copies of `samples` random indexed tiles query the store;
    how often does the source tile come back at rank 1 and in the top 10? `raw_weight` as
    for `search`, with the same default (it matters on an augmented store)."""
    from tilesearch import quality as ev

    with Store.open(store) as s:
        fp = store_fingerprinter(s, weights=weights, runtime=runtime)
        n = min(samples, s.count) * (len(ev.TRANSFORMS) + 1)
        tick = _count_bar(n, "fingerprinting") if progress else None
        weight = default_raw_weight(s) if raw_weight is None else raw_weight
        return ev.robustness(s, fp, samples=samples, seed=seed, metric=metric,
                                  raw_weight=weight, progress=tick)


def _count_bar(total: int, desc: str) -> Callable[[int], None]:
    bar = _bar(total, desc)

    def tick(n: int) -> None:
        bar.update(n)
        if bar.n >= bar.total:
            bar.close()

    return tick
