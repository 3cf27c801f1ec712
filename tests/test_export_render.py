"""Exports (JSON, GeoJSON, CSV), thumbnails and contact sheets, on small synthetic stores."""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform, transform_bounds

from tilesearch.errors import InputError
from tilesearch.outputs import export, render
from tilesearch.retrieval import Query, SearchResult, nearest, tile_query
from tilesearch.store import Store

K = 5
ROOT = Path(__file__).resolve().parents[1]


def search_result(store: Store, tile_id: int, k: int = K) -> SearchResult:
    """The k nearest tiles to a stored tile, itself excluded, overlaps not suppressed."""
    q = tile_query(store, tile_id)
    hits = nearest(store, q.vector, k=k, exclude=q.tile, suppress_overlaps=False)
    return SearchResult(q, hits, "euclidean", str(store.path))


def signed_area(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def corner_lonlat(path: str, col: int, row: int, size: int) -> set[tuple[float, float]]:
    """The 4 corners of a tile in lon/lat, computed with rasterio alone, rounded to 1e-9."""
    with rasterio.open(path) as ds:
        pts = [
            ds.transform * (c, r)
            for c, r in ((col, row), (col + size, row), (col + size, row + size), (col, row + size))
        ]
        lon, lat = transform(ds.crs, "EPSG:4326", [p[0] for p in pts], [p[1] for p in pts])
    return {(round(x, 9), round(y, 9)) for x, y in zip(lon, lat, strict=True)}


def read_rgb(path: str, col: int, row: int, size: int) -> np.ndarray:
    """A tile's RGB pixels read with rasterio alone, (size, size, 3) uint8."""
    with rasterio.open(path) as ds:
        data = ds.read([1, 2, 3], window=rasterio.windows.Window(col, row, size, size))
    return data.transpose(1, 2, 0)


def load_bench(name: str) -> ModuleType:
    """A module of the benchmarks package (``benchmarks.targets.store``...), from the repo."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


# ----- GeoJSON ------------------------------------------------------------------------------
def test_geojson_polygons_are_closed_ccw_lonlat_inside_their_image(fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    fc = export.to_geojson(result, fake_store)
    json.dumps(fc, allow_nan=False)
    assert fc["type"] == "FeatureCollection"
    assert fc["skipped_ungeoreferenced"] == 0
    hits = [f for f in fc["features"] if f["properties"]["role"] == "hit"]
    assert len(hits) == K == len(result.hits)
    assert {f["properties"]["source"] for f in hits} <= {
        str(Path(fake_store.path).parent / n) for n in ("a.tif", "b.tif")
    }
    for f in fc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        (ring,) = f["geometry"]["coordinates"]
        p = f["properties"]
        assert len(ring) == 5 and ring[0] == ring[-1]
        assert signed_area(ring) > 0
        with rasterio.open(p["source"]) as ds:
            west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        for lon, lat in ring:
            assert west - 1e-9 <= lon <= east + 1e-9 and south - 1e-9 <= lat <= north + 1e-9
        assert {(round(x, 9), round(y, 9)) for x, y in ring} == corner_lonlat(
            p["source"], p["col_off"], p["row_off"], p["width"]
        )
        assert min(x for x, _ in ring) < p["lon"] < max(x for x, _ in ring)
        assert min(y for _, y in ring) < p["lat"] < max(y for _, y in ring)


def test_geojson_properties_match_hits_and_query_comes_first(fake_store: Store) -> None:
    result = search_result(fake_store, 14)
    features = export.to_geojson(result, fake_store)["features"]
    query, hits = features[0]["properties"], [f["properties"] for f in features[1:]]
    assert query["role"] == "query" and query["tile_id"] == 14
    assert query["description"] == result.query.description
    for p, h in zip(hits, result.hits, strict=True):
        t = h.tile
        assert p["role"] == "hit"
        assert (p["rank"], p["tile_id"], p["distance"], p["source"]) == (
            h.rank,
            t.tile_id,
            h.distance,
            t.source,
        )
        assert (p["col_off"], p["row_off"], p["width"], p["height"]) == (
            t.window.col_off,
            t.window.row_off,
            t.window.width,
            t.window.height,
        )
        assert t.lonlat is not None
        assert (p["lon"], p["lat"]) == pytest.approx(t.lonlat)
        assert p["valid_fraction"] == pytest.approx(t.valid_fraction, abs=1e-4)


def test_geojson_of_south_up_image_is_still_counter_clockwise(
    tmp_path: Path, make_geotiff: Callable[..., Path], build_store: Callable[..., Store]
) -> None:
    from rasterio.transform import Affine

    south_up = Affine(0.5, 0, 500000.0, 0, 0.5, 4980000.0)  # rows run north
    path = make_geotiff(tmp_path / "s.tif", 600, 500, crs="EPSG:32633", transform=south_up)
    store = build_store([path])
    fc = export.to_geojson(search_result(store, 0, k=3), store)
    assert len(fc["features"]) == 4
    for f in fc["features"]:
        assert signed_area(f["geometry"]["coordinates"][0]) > 0


def test_ungeoreferenced_hits_are_counted_not_placed(
    tmp_path: Path,
    make_png: Callable[..., Path],
    make_geotiff: Callable[..., Path],
    build_store: Callable[..., Store],
) -> None:
    pngs = [make_png(tmp_path / f"p{i}.png", 600, 500, seed=i) for i in range(2)]
    store = build_store(pngs)
    result = search_result(store, 3)
    fc = export.to_geojson(result, store)
    assert fc["features"] == [] and fc["skipped_ungeoreferenced"] == K
    rows = list(csv.DictReader(io.StringIO(export.to_csv(result))))
    assert [(r["lon"], r["lat"]) for r in rows] == [("", "")] * K

    tif = make_geotiff(tmp_path / "g.tif", 600, 500, crs="EPSG:3857", seed=7)
    mixed = build_store([pngs[0], tif])
    everything = search_result(mixed, 0, k=mixed.count - 4)  # all but the 4 overlapping tiles
    n_png = sum(not h.tile.lonlat for h in everything.hits)
    fc = export.to_geojson(everything, mixed)
    assert 0 < n_png < len(everything.hits)
    assert fc["skipped_ungeoreferenced"] == n_png
    assert len(fc["features"]) == len(everything.hits) - n_png  # query tile is a PNG's


def test_write_geojson(tmp_path: Path, fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    out = export.write_geojson(result, fake_store, tmp_path / "r.geojson")
    assert json.loads(out.read_text()) == export.to_geojson(result, fake_store)


# ----- JSON and CSV -------------------------------------------------------------------------
def test_json_round_trips(fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    data = json.loads(export.to_json(result))
    assert data == result.to_dict()
    assert [r["tile_id"] for r in data["results"]] == [h.tile.tile_id for h in result.hits]
    assert data["query_tile"]["tile_id"] == 5


def test_csv_has_one_row_per_hit(fake_store: Store) -> None:
    result = search_result(fake_store, 20)
    rows = list(csv.DictReader(io.StringIO(export.to_csv(result))))
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert len(rows) == K
    for r, h in zip(rows, result.hits, strict=True):
        assert (int(r["rank"]), int(r["tile_id"]), r["source"]) == (
            h.rank,
            h.tile.tile_id,
            h.tile.source,
        )
        assert float(r["distance"]) == h.distance
        assert (int(r["col_off"]), int(r["row_off"])) == (
            h.tile.window.col_off,
            h.tile.window.row_off,
        )
        assert (float(r["lon"]), float(r["lat"])) == h.tile.lonlat


# ----- thumbnails and contact sheets --------------------------------------------------------
def test_contact_sheet_size_and_panels_hold_the_tiles(tmp_path: Path, fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    out = render.contact_sheet(result, fake_store, tmp_path / "sheet.png")
    assert out == tmp_path / "sheet.png"
    sheet = np.asarray(Image.open(out).convert("RGB"))
    pad, gap, thumb = render.PAD, render.GAP, 256
    assert sheet.shape[1] == pad + thumb + gap + K * (thumb + pad)  # one row of K results
    assert 2 * thumb > sheet.shape[0] > thumb + 40
    layout = render.sheet_layout(K, thumb)
    assert sheet.shape[:2] == layout.size[::-1]
    q = result.query.tile
    assert q is not None
    x, y = layout.query_xy
    np.testing.assert_array_equal(
        sheet[y : y + thumb, x : x + thumb],
        read_rgb(q.source, q.window.col_off, q.window.row_off, thumb),
    )
    for hit, (x, y) in zip(result.hits, layout.cells, strict=True):
        w = hit.tile.window
        np.testing.assert_array_equal(
            sheet[y : y + thumb, x : x + thumb],
            read_rgb(hit.tile.source, w.col_off, w.row_off, thumb),
        )
        label = sheet[y + thumb + 4 : y + thumb + 4 + render.label_height(layout.font_size, 2)]
        assert (label[:, x : x + thumb] < 100).any()  # some dark text under each panel


def test_contact_sheet_grid_and_thumb_size(tmp_path: Path, fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    out = render.contact_sheet(result, fake_store, tmp_path / "s.png", thumb=64, columns=2)
    layout = render.sheet_layout(K, 64, 2)
    assert (layout.columns, layout.rows) == (2, 3)
    with Image.open(out) as img:
        assert img.size == layout.size
        assert img.size[0] == render.PAD + 64 + render.GAP + 2 * (64 + render.PAD)
    xs = sorted({x for x, _ in layout.cells})
    ys = sorted({y for _, y in layout.cells})
    assert len(xs) == 2 and len(ys) == 3 and xs[1] - xs[0] >= 64 and ys[1] - ys[0] > 64
    assert all(x + 64 <= layout.size[0] and y + 64 <= layout.size[1] for x, y in layout.cells)


def test_contact_sheet_shows_given_query_pixels(tmp_path: Path, fake_store: Store) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    vector = np.asarray(fake_store.vectors()[0])
    q = Query(vector, "image example.png with a long description to wrap", pixels=pixels)
    result = SearchResult(q, nearest(fake_store, vector, k=3), "euclidean", "s")
    out = render.contact_sheet(result, fake_store, tmp_path / "q.png")
    x, y = render.sheet_layout(3).query_xy
    sheet = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(sheet[y : y + 256, x : x + 256], pixels)


def test_thumbnail_shows_invalid_pixels_as_grey_checker(
    tmp_path: Path, make_geotiff: Callable[..., Path], build_store: Callable[..., Store]
) -> None:
    path = make_geotiff(tmp_path / "m.tif", 600, 500, crs="EPSG:3857", alpha=True, seed=4)
    store = build_store([path])
    meta = next(t for t in store.tiles(range(store.count)) if t.valid_fraction < 1)
    w = meta.window
    thumb = render.thumbnail(store, meta)
    with rasterio.open(path) as ds:
        valid = ds.dataset_mask(window=rasterio.windows.Window(w.col_off, w.row_off, 256, 256))
    valid = valid > 0
    assert 0.5 <= valid.mean() < 1
    np.testing.assert_array_equal(
        thumb[valid], read_rgb(str(path), w.col_off, w.row_off, 256)[valid]
    )
    greys = {tuple(c) for c in thumb[~valid].tolist()}
    assert greys == set(render.CHECKER)
    small = render.thumbnail(store, meta, size=64)
    assert small.shape == (64, 64, 3) and small.dtype == np.uint8


def test_to_thumbnail_fits_non_square_tiles() -> None:
    pixels = np.full((100, 50, 3), 7, np.uint8)
    out = render.to_thumbnail(pixels, None, 64)
    assert out.shape == (64, 64, 3)
    assert (out[:, 16:48] == 7).all() and (out[:, :10] == render.BACKGROUND).all()


def test_sheet_survives_a_missing_source_image(tmp_path: Path, fake_store: Store) -> None:
    result = search_result(fake_store, 5)
    (tmp_path / "b.tif").unlink()
    meta = next(h.tile for h in result.hits if h.tile.source.endswith("b.tif"))
    with pytest.raises(InputError):
        render.thumbnail(fake_store, meta)
    out = render.contact_sheet(result, fake_store, tmp_path / "sub" / "sheet.png")
    assert out.is_file()


# ----- benchmarks/targets/store.py --------------------------------------------------------
def test_bench_store_measures_a_store(
    tmp_path: Path, fake_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench("targets.store")
    out = tmp_path / "store.json"
    assert bench.main([str(fake_store.path), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    size = fake_store.bytes_on_disk()
    assert (m["images"], m["tiles"], m["dim"]) == (2, 24, 8)
    assert m["store_bytes"] == size
    assert m["bytes_per_tile"] == pytest.approx(size / 24)
    assert m["ratio_vs_float32"] == pytest.approx(2 * 600 * 500 * 3 * 4 / size)
    assert "compression vs float32" in capsys.readouterr().out


def test_bench_search_quick_methods_agree() -> None:
    bench = load_bench("common.synthetic")
    vectors = bench.make_fingerprints(400, seed=1)
    assert vectors.shape == (400, 512) and vectors.dtype == np.float32 and vectors.min() >= 0
    index = {str(i): np.array(v) for i, v in enumerate(vectors)}
    top = bench.prototype_search(index, vectors[7])
    d = np.linalg.norm(vectors - vectors[7], axis=1)
    assert {int(name) for _, name in top} == set(np.argsort(d)[:10].tolist())
    assert top[0][1] == "7" and math.isclose(top[0][0], 0.0)
    assert [s for s, _ in top] == sorted(s for s, _ in top)
