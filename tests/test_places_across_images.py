"""Distinct places across images: two overlapping crops of one orthomosaic (as two flights over
one area, or a VRT beside its sources) give one hit per place, and a tile's twin in the
other crop is not returned as a hit of that tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from fakes import FakeModel
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from tilesearch import api
from tilesearch.options import SearchOptions
from tilesearch.retrieval import same_place
from tilesearch.store import Store

OFFSET = 256
"""Columns between the two crops' left edges: a multiple of the stride, so tiles line up."""


@pytest.fixture
def crops(tmp_path: Path, monkeypatch) -> Path:
    """A store of two crops (west: columns 0-767, east: 256-1023) of one seeded 1024 x 640
    UTM image at 0.5 m, fingerprinted by `FakeModel`."""
    rng = np.random.default_rng(7)
    coarse = rng.integers(0, 255, (3, 10, 16)).astype(np.float32)
    pixels = np.kron(coarse, np.ones((64, 64), np.float32)).astype(np.uint8)  # 640 x 1024
    pixels = (pixels + rng.integers(0, 20, pixels.shape)).astype(np.uint8)
    full = from_origin(500000.0, 5000000.0, 0.5, 0.5)
    for name, col in (("west.tif", 0), ("east.tif", OFFSET)):
        win = Window(col, 0, 768, 640)
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=768, height=640,
                           count=3, dtype="uint8", crs="EPSG:32633",
                           transform=window_transform(win, full)) as ds:
            ds.write(pixels[:, :, col:col + 768])
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    store = tmp_path / "crops.tiles"
    api.index([tmp_path / "west.tif", tmp_path / "east.tif"], store)
    return store


def twin(store: Store, tile_id: int) -> int:
    """The tile of the other crop with the same ground and pixels as `tile_id`."""
    t = store.tile(tile_id)
    other = [m for m in store.tiles(list(range(store.count))) if m.image_id != t.image_id
             and m.window.row_off == t.window.row_off
             and m.window.col_off == t.window.col_off + (OFFSET if "east" in t.source
                                                          else -OFFSET)]
    assert len(other) == 1
    return other[0].tile_id


def query_tile(store: Store) -> int:
    """A west tile that lies inside the east crop too."""
    return next(m.tile_id for m in store.tiles(list(range(store.count)))
                if "west" in m.source and m.window.col_off == OFFSET + 128
                and m.window.row_off == 128)


def test_the_twin_in_the_other_image_is_the_query_itself(crops: Path) -> None:
    with Store.open(crops) as s:
        q = query_tile(s)
        other = twin(s, q)
        np.testing.assert_allclose(s.vectors()[q], s.vectors()[other], atol=1e-6)
    hits = api.search(crops, tile=q, options=SearchOptions(k=8)).hits
    assert other not in [h.tile.tile_id for h in hits]
    kept = api.search(crops, tile=q, options=SearchOptions(
        k=8, exclude_self=False, suppress_overlaps=False)).hits
    assert kept[0].distance == pytest.approx(0, abs=1e-6)
    assert {kept[0].tile.tile_id, kept[1].tile.tile_id} == {q, other}


def test_hits_are_distinct_places_across_images(crops: Path) -> None:
    with Store.open(crops) as s:
        boxes = s.lonlat_boxes()
    result = api.search(crops, tile=query_tile_of(crops), options=SearchOptions(k=10))
    ids = [h.tile.tile_id for h in result.hits]
    images = {h.tile.tile_id: h.tile.image_id for h in result.hits}
    assert len({images[i] for i in ids}) == 2  # hits come from both crops
    for n, a in enumerate(ids):
        for b in ids[n + 1:]:
            if images[a] != images[b]:
                assert not same_place(tuple(boxes[a]), tuple(boxes[b])), (a, b)
    loose = api.search(crops, tile=query_tile_of(crops), options=SearchOptions(
        k=10, suppress_overlaps=False))
    loose_ids = [h.tile.tile_id for h in loose.hits]
    assert any(images_of(crops, a) != images_of(crops, b)
               and same_place(tuple(boxes[a]), tuple(boxes[b]))
               for n, a in enumerate(loose_ids) for b in loose_ids[n + 1:])


def query_tile_of(store: Path) -> int:
    with Store.open(store) as s:
        return query_tile(s)


def images_of(store: Path, tile_id: int) -> int:
    with Store.open(store) as s:
        return s.tile(tile_id).image_id


def test_same_place_needs_more_than_a_sliver() -> None:
    a = (0.0, 0.0, 1.0, 1.0)
    assert same_place(a, (0.5, 0.5, 1.5, 1.5))  # a quarter
    assert not same_place(a, (0.95, 0.0, 1.95, 1.0))  # a twentieth
    assert not same_place(a, (1.0, 0.0, 2.0, 1.0))  # touching
