"""The API's calls on a store as a whole: facts, checks, warming, the search index, overviews."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tilesearch import ann
from tilesearch.api.progress import _count_bar
from tilesearch.errors import QueryError
from tilesearch.options import (
    BuildOptions,
    with_changes,
)
from tilesearch.retrieval import (
    default_raw_weight,
    marks_from_geojson,
)
from tilesearch.store import CheckReport, LabelSet, Store, Warmer
from tilesearch.store import check as check_store
from tilesearch.store import warm as warm_store


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
            "gsd": s.gsd_setting,
            "tile_ground_m": s.gsd * s.tile_size if s.gsd else None,
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


def build_index(store: str | Path, options: BuildOptions | None = None,
                **changes: Any) -> ann.BuildReport:
    """Build, extend or rebuild the store's approximate search index (see `tilesearch.ann`).

    `options` (a `BuildOptions`; its fields may be given as keywords instead): without
    `rebuild` an existing index is extended with the tiles appended since it was built.
    `keep_full=False` drops full-precision fingerprints of encoded tiles (smaller store, no
    exact re-ranking). Stores under `ann.EXACT_BELOW` tiles get none unless `force`.
    `augment` = k > 0 (re)computes database-side augmentation over k neighbours from other
    places (`tilesearch.ann.augment`), 0 removes it, None leaves it as it is."""
    from tilesearch.ann import augment as dba

    o = with_changes(options or BuildOptions(), changes)
    build = partial(ann.build, codec=o.codec, nprobe=o.nprobe, force=o.force)
    with Store.open(store, writable=True) as s:
        if o.augment == 0:
            dba.remove(s)
        elif o.augment is not None:
            build(s, rebuild=o.rebuild)  # candidates for the neighbour search
            tick = _count_bar(s.count, "augmenting") if o.progress else None
            dba.build(s, o.augment, o.alpha, progress=tick)
        return build(s, rebuild=o.rebuild, keep_full=o.keep_full)


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


def label(store: str | Path, name: str, *, positives: Sequence[int] = (),
          negatives: Sequence[int] = (), unlabel: Sequence[int] = (),
          from_geojson: str | Path | None = None) -> LabelSet:
    """Mark tiles positive or negative in the label set `name` of `store` (made when new; a
    tile marked again takes its new mark), forget the marks of `unlabel`; returns the set
    (empty when its last mark was forgotten: the set is gone from the store).
    `from_geojson` adds the marks of a GeoJSON file's points and polygons
    (`retrieval.marks_from_geojson`). One transaction: a kill leaves the set as it was."""
    with Store.open(store, writable=True) as s:
        if from_geojson is not None:
            more_pos, more_neg = marks_from_geojson(s, from_geojson)
            positives, negatives = [*positives, *more_pos], [*negatives, *more_neg]
        s.set_labels(name, positives, negatives, unlabel)
        try:
            return s.label_set(name)
        except QueryError:  # no label is left: the set is gone
            return LabelSet(name, (), ())


def label_sets(store: str | Path | Store) -> list[LabelSet]:
    """Every label set of `store`, by name."""
    if isinstance(store, Store):
        return store.label_sets()
    with Store.open(store) as s:
        return s.label_sets()


def remove_label_set(store: str | Path, name: str) -> int:
    """Delete the label set `name` of `store`; returns how many labels it held."""
    with Store.open(store, writable=True) as s:
        return s.remove_label_set(name)


def export_fingerprints(store: str | Path, path: str | Path, *, progress: bool = False,
                        paths: bool = True) -> int:
    """Write every tile of `store` to the GeoParquet file `path` (footprint, tile id,
    source, window, fingerprint; `outputs.write_geoparquet`); returns the tiles written.
    With `paths` False the sources are file names only."""
    from tilesearch.outputs import write_geoparquet

    with Store.open(store) as s:
        tick = _count_bar(s.count, "exporting") if progress and s.count else None
        return write_geoparquet(s, path, paths=paths, progress=tick)
