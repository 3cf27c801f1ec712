"""The Python API: everything the CLI and the web app do is one of these calls."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.api.auditing import answer_audit, audit, audit_for
from tilesearch.api.finding import FindResult, find, heatmaps, suggestions
from tilesearch.api.measure import evaluate, robustness
from tilesearch.api.progress import progress_bar
from tilesearch.api.scoring import Scores, scores
from tilesearch.api.stores import (
    OVERVIEW_FOLDER,
    build_index,
    build_overviews,
    check,
    export_fingerprints,
    info,
    label,
    label_sets,
    remove_label_set,
    warm,
)
from tilesearch.errors import OptionError, QueryError, StoreError
from tilesearch.ingest import (
    IndexReport,
    Scaling,
    index_images,
    open_or_create_store,
    record_failures,
)
from tilesearch.models import DEFAULT_MODEL, GPU_BATCH, Fingerprinter, default_recipe
from tilesearch.options import (
    CPU_BATCH,
    STRIDE,
    TILE_SIZE,
    IndexOptions,
    SearchOptions,
    parse_gsd,
    with_changes,
)
from tilesearch.raster import expand_stac
from tilesearch.retrieval import (
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
from tilesearch.store import Store

__all__ = [
    "OVERVIEW_FOLDER",
    "FindResult",
    "Scores",
    "answer_audit",
    "audit",
    "audit_for",
    "build_index",
    "build_overviews",
    "check",
    "evaluate",
    "export_fingerprints",
    "find",
    "heatmaps",
    "image_query",
    "index",
    "info",
    "label",
    "label_sets",
    "load_fingerprinter",
    "progress_bar",
    "remove_label_set",
    "robustness",
    "scores",
    "search",
    "store_fingerprinter",
    "suggestions",
    "warm",
]


def load_fingerprinter(model: str | None = None, *, weights: str | Path | None = None,
                       runtime: str = "auto", tile_size: int = TILE_SIZE,
                       threads: int | None = None, recipe: str | None = None,
                       device: str = "auto") -> Fingerprinter:
    """A fingerprint model from the registry (default: `models.DEFAULT_MODEL`, with the
    model's default recipe, `models.default_recipe`)."""
    from tilesearch.models import DEFAULT_MODEL, load_model

    return load_model(model or DEFAULT_MODEL, weights=weights, runtime=runtime,
                      tile_size=tile_size, threads=threads, recipe=recipe, device=device)


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
    """`opts` with the model, recipe and tile size of the existing store where unset (the
    recipe only for the store's model: another one is refused by name, not by recipe)."""
    with Store.open(store) as s:
        model = opts.model or s.identity.name
        recipe = opts.recipe or (s.identity.recipe if model == s.identity.name else None)
        return with_changes(opts, {"model": model, "recipe": recipe,
                                   "tile_size": opts.tile_size or s.tile_size})


def _run_index(paths: list[str | Path], store: str | Path, opts: IndexOptions,
               on_ray: bool) -> IndexReport:
    threads = 1 if on_ray and opts.threads is None else opts.threads  # one per Ray worker
    tile_size = opts.tile_size or TILE_SIZE
    recipe = opts.recipe or default_recipe(opts.model or DEFAULT_MODEL, tile_size,
                                           opts.stride or STRIDE)  # per tile if no blocks fit
    load = partial(load_fingerprinter, opts.model, weights=opts.weights, runtime=opts.runtime,
                   tile_size=tile_size, threads=threads, recipe=recipe, device=opts.device)
    fp = load(device="cpu") if on_ray else load()  # on Ray the driver needs the identity only
    paths, items, stac_errors = expand_stac(paths, opts.asset)
    with open_or_create_store(store, fp, tile_size=opts.tile_size, stride=opts.stride,
                              max_invalid=opts.max_invalid, gsd=opts.gsd) as s:
        report = _index_into(s, paths, opts, fp, load if on_ray else None, items)
        if stac_errors:
            bad = [(e.path, e.reason) for e in stac_errors]
            report.failed[:0] = bad
            record_failures(s, report, bad)
        return report


def _index_into(s: Store, paths: list[str | Path], opts: IndexOptions, fp: Fingerprinter,
                ray_load: Callable[..., Fingerprinter] | None,
                items: dict[str, str]) -> IndexReport:
    """Index `paths` into the open store `s`: on Ray when `ray_load` (the workers' model
    maker) is given, else here with `fp`."""
    bar = progress_bar if opts.progress else None
    scaling = Scaling(pixel_size=opts.pixel_size, max_upsample=opts.max_upsample)
    if ray_load is not None:
        from tilesearch.ingest import index_on_ray

        gpu = opts.device == "cuda"  # each worker then takes one GPU
        return index_on_ray(paths, s, ray_load, bands=opts.bands,
                            batch_size=opts.batch_size or (GPU_BATCH if gpu else CPU_BATCH),
                            workers=opts.workers, num_gpus=1.0 if gpu else 0.0, progress=bar,
                            items=items, scaling=scaling)
    on_gpu = getattr(fp, "device", "cpu") == "cuda"
    readers = opts.readers or (min(8, os.cpu_count() or 1) if on_gpu else 1)
    return index_images(paths, s, fp, bands=opts.bands, progress=bar, readers=readers,
                        batch_size=opts.batch_size or (GPU_BATCH if on_gpu else CPU_BATCH),
                        items=items, scaling=scaling)


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


def search(store: str | Path | Store, *, tile: int | None = None,
           image: str | Path | np.ndarray | Query | None = None,
           lonlat: tuple[float, float] | None = None,
           positives: Sequence[int] = (), negatives: Sequence[int] = (),
           where: SearchFilter | None = None, model: Fingerprinter | None = None,
           weights: str | Path | None = None, runtime: str = "auto",
           image_gsd: float | None = None,
           options: SearchOptions | None = None, **changes: Any) -> SearchResult:
    """The k tiles most like a query: a tile id, an image file, a lon/lat point, or several
    positive tile ids ("more like these"), optionally with negative ones ("not like those").
    An image is a file, RGB pixels (H, W, 3) uint8, or a query `image_query` made already
    (to fingerprint outside a lock that the search itself needs, as the web app does).
    `where` restricts the search to an area or to some images (`retrieval.SearchFilter`). An
    image query uses `model` when given (it must be the store's, see `store_fingerprinter`)
    instead of loading the store's model (`weights`, `runtime`) for this one search.
    `image_gsd` is the metres a pixel of an image query (see `image_query`).

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
        q = _query(s, tile, image, lonlat, list(positives), list(negatives), model, image_gsd)
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


def _gsd(value: float | None) -> float | None:
    """A query image's metres a pixel, checked like `--gsd` (OptionError outside the range)."""
    parsed = parse_gsd(value)
    if isinstance(parsed, str):
        raise OptionError(f"gsd of a query image must be metres a pixel, not {value!r}")
    return parsed


def _query(s: Store, tile: int | None, image: str | Path | np.ndarray | Query | None,
           lonlat: tuple[float, float] | None, positives: list[int], negatives: list[int],
           model: Fingerprinter | None, image_gsd: float | None = None) -> Query:
    if lonlat is not None:
        return lonlat_query(s, *lonlat)
    if isinstance(image, Query):
        return image
    if image is not None:
        assert model is not None
        return image_query_of(s, image, model, _gsd(image_gsd))  # checks the model too
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


def image_query(store: str | Path | Store, image: str | Path | np.ndarray, *,
                model: Fingerprinter | None = None, gsd: float | None = None) -> Query:
    """The query fingerprint of an image (a file, or RGB pixels (H, W, 3) uint8) resampled to
    the store's tile size, by `model` (default: the store's, loaded for this call); pass it
    to `search(image=)`. `gsd` is the image's metres a pixel (a georeferenced file knows its
    own): the query is then one tile's ground at the store's resolution
    (`retrieval.image_query`)."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        return image_query_of(s, image, model or store_fingerprinter(s), _gsd(gsd))
    finally:
        if s is not store:
            s.close()
