"""`tilesearch demo`: index real sample imagery offline, then query it and draw the results."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import api
from tilesearch.errors import TilesearchError
from tilesearch.options import MAX_UPSAMPLE

SAMPLE_SPEC = "deepforest==1.5.2"
"""Its wheel carries four georeferenced sample images (2.1.0 carries one)."""
SAMPLE_HINT = f"pip install --no-deps {SAMPLE_SPEC}"


def sample_data() -> Path:
    """The airborne and drone RGB sample images inside the MIT-licensed deepforest wheel.

    The package is located, never imported (it pulls in heavy dependencies).
    """
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise TilesearchError("the demo's sample imagery comes from the deepforest wheel, which "
                              f"is not installed; run: {SAMPLE_HINT}  (or pass --data FOLDER)")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise TilesearchError(f"{data}: deepforest's data folder is missing; reinstall with: "
                              f"{SAMPLE_HINT}")
    return data


def run_demo(out: Path, *, data: Path | None = None, queries: int = 3, k: int = 8,
             seed: int = 0, echo: Callable[[str], None] = print) -> list[Path]:
    """Index `data` (default: the sample imagery) into `out/demo.tiles` and write a contact
    sheet and GeoJSON for `queries` random tiles; returns the files written.

    The store's ground resolution is `demo_gsd`'s, and queries and hits are drawn from the
    georeferenced images, so that every GeoJSON places its query and its hits on the map
    (all images when none is georeferenced)."""
    from tilesearch.outputs import export, render
    from tilesearch.retrieval import SearchFilter
    from tilesearch.store import Store

    data = data or sample_data()
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "demo.tiles"
    gsd = demo_gsd(data)
    scale = f" at {gsd:g} m a pixel" if gsd else ""
    echo(f"indexing {data} into {store_path}{scale}")
    report = api.index([data], store_path, progress=True, gsd=gsd)
    echo(f"indexed {len(report.indexed)} image(s), {report.tiles_added} new tiles "
         f"({report.tiles_per_second:.1f} tiles/s); {len(report.already_done)} already done")
    for path, reason in report.failed:
        echo(f"  skipped {path}: {reason}")
    written: list[Path] = []
    with Store.open(store_path) as store:
        if store.count == 0:
            raise TilesearchError(f"{data}: no tile could be indexed")
        rng = np.random.default_rng(seed)
        pool, placed_images = _georeferenced_tiles(store)
        where = SearchFilter(images=placed_images) if placed_images else None
        for tile_id in rng.choice(pool, size=min(queries, len(pool)), replace=False):
            result = api.search(store, tile=int(tile_id), k=k, where=where)
            sheet = render.contact_sheet(result, store, out / f"query-{tile_id}.png")
            geo = out / f"query-{tile_id}.geojson"
            export.write_geojson(result, store, geo)
            best = ", ".join(f"{h.tile.tile_id} ({h.distance:.2f})" for h in result.hits[:3])
            placed = len(export.to_geojson(result, store)["features"])
            echo(f"query tile {tile_id}: best {best} -> {sheet.name}, {geo.name} (features "
                 f"on the map: {placed})")
            written += [sheet, geo]
    echo(f"wrote {len(written)} files to {out}; try: tilesearch search {store_path} --tile "
         f"{int(tile_id)} -k 10")
    return written


def demo_gsd(data: Path) -> float | None:
    """The finest ground resolution at which no georeferenced image under `data` is
    upsampled beyond `options.MAX_UPSAMPLE`: the coarsest one's metres a pixel over that
    limit (finer images are read coarser, which costs nothing). None when no image is
    georeferenced (the store then keeps native pixels)."""
    from tilesearch.raster import find_images, open_image

    gsds = []
    for path in find_images([data])[0]:
        try:
            with open_image(path) as src:
                if src.info.gsd:
                    gsds.append(src.info.gsd)
        except TilesearchError:
            continue  # the index run reports it
    return round(max(gsds) / MAX_UPSAMPLE, 6) if gsds else None


def _georeferenced_tiles(store: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Ids of the tiles of georeferenced images, the demo's queries, and those images' paths
    (its search filter); every tile and no filter when no image is georeferenced."""
    images = [i for i in store.images() if i["info"].georeferenced]
    pool = store.tile_ids_of_images([i["id"] for i in images]) if images else []
    if not len(pool):
        return np.arange(store.count), ()
    return np.sort(pool), tuple(i["info"].path for i in images)
