"""Files GIS users open: search hits as GeoJSON with a plain layer name and ground facts, as a
GeoPackage layer; every fingerprint as GeoParquet, read back with pyarrow and shapely, on the
fake store (a.tif EPSG:32633 at 0.5 m, b.tif EPSG:3857 at 0.5 Mercator metres, lat 45)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from fakes import run_cli

from tilesearch import api
from tilesearch.outputs import export, write_geoparquet, write_hits_gpkg
from tilesearch.retrieval import SearchResult, nearest, tile_query
from tilesearch.store import Store

pyogrio = pytest.importorskip("pyogrio")
pq = pytest.importorskip("pyarrow.parquet")


def cosine_result(store: Store, tile_id: int, k: int = 6) -> SearchResult:
    q = tile_query(store, tile_id)
    hits = nearest(store, q.vector, k=k, metric="cosine", exclude=q.tile,
                   suppress_overlaps=False)
    return SearchResult(q, hits, "cosine", str(store.path))


def test_geojson_names_its_layer_plainly_and_gives_crs_ground_size_and_similarity(
        fake_store: Store) -> None:
    fc = export.to_geojson(cosine_result(fake_store, 0), fake_store)
    assert fc["name"] == "tilesearch_hits" and fc["query"] == "tile 0"
    hits = [f["properties"] for f in fc["features"] if f["properties"]["role"] == "hit"]
    assert len(hits) == 6
    for p in hits:
        assert p["similarity"] == pytest.approx(1 - p["distance"], abs=1e-6)
        if p["source"].endswith("a.tif"):  # UTM at its central meridian: 256 x 0.5 m
            assert (p["crs"], p["ground_size_m"]) == ("EPSG:32633", pytest.approx(128, abs=0.5))
        else:  # Web Mercator at lat 45: 128 nominal metres are 90.5 on the ground
            assert (p["crs"], p["ground_size_m"]) == ("EPSG:3857", pytest.approx(90.5, abs=0.5))
    assert {p["crs"] for p in hits} == {"EPSG:32633", "EPSG:3857"}


def test_hits_as_a_geopackage_layer(tmp_path: Path, fake_store: Store) -> None:
    result = cosine_result(fake_store, 3)
    out = write_hits_gpkg(result, fake_store, tmp_path / "hits.gpkg")
    assert [name for name, _ in pyogrio.list_layers(out)] == ["tilesearch_hits"]
    meta, _, geoms, fields = pyogrio.raw.read(out)
    assert "4326" in meta["crs"] and meta["geometry_type"] == "Polygon"
    cols = dict(zip(meta["fields"], fields, strict=True))
    want = export.to_geojson(result, fake_store)["features"]
    assert list(cols["tile_id"]) == [f["properties"]["tile_id"] for f in want]
    assert list(cols["role"]) == ["query", *["hit"] * 6]
    assert np.isnan(cols["rank"][0]) and list(cols["rank"][1:]) == [1, 2, 3, 4, 5, 6]
    for g, f in zip(shapely.from_wkb(geoms), want, strict=True):
        assert g.equals_exact(shapely.Polygon(f["geometry"]["coordinates"][0]), 1e-9)
    assert not list(tmp_path.glob(".hits*"))  # no temporary left


def test_search_gpkg_from_the_cli(tmp_path: Path, closed_store: Path, capsys,
                                  monkeypatch) -> None:
    out, js = tmp_path / "hits.gpkg", tmp_path / "hits.json"
    code, _, err = run_cli(["search", closed_store, "--tile", "2", "-k", "4", "--gpkg", out,
                            "--json", js], capsys, monkeypatch)
    assert code == 0 and f"wrote {out}" in err
    hits = json.loads(js.read_text())["results"]
    assert len(hits) >= 2  # overlaps suppressed: fewer than 4 on 24 tiles
    tiles = pyogrio.raw.read(out)[3][pyogrio.raw.read(out)[0]["fields"].tolist().index("tile_id")]
    assert list(tiles) == [2, *(h["tile_id"] for h in hits)]  # the query, then the hits
    bad = tmp_path / "nope" / "hits.gpkg"
    code, _, err = run_cli(["search", closed_store, "--tile", "2", "--gpkg", bad],
                           capsys, monkeypatch)
    assert code == 2 and "does not exist" in err and not bad.parent.exists()


def test_fingerprints_as_geoparquet(tmp_path: Path, fake_store: Store) -> None:
    out = tmp_path / "fp.parquet"
    ticks: list[int] = []
    assert write_geoparquet(fake_store, out, progress=ticks.append) == 24 == sum(ticks)
    table = pq.read_table(out)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    west, south, east, north = geo["columns"]["geometry"]["bbox"]
    model = json.loads(table.schema.metadata[b"tilesearch"])["model"]
    assert model["dim"] == fake_store.identity.dim
    rows = table.to_pydict()
    assert rows["tile_id"] == list(range(24))
    np.testing.assert_array_equal(np.array(rows["embedding"], np.float32),
                                  np.asarray(fake_store.vectors()))
    metas = fake_store.tiles(list(range(24)))
    for i, m in enumerate(metas):
        assert rows["source"][i] == m.source
        assert (rows["col_off"][i], rows["row_off"][i]) == (m.window.col_off, m.window.row_off)
        poly = shapely.from_wkb(rows["geometry"][i])
        assert poly.is_valid and poly.contains(shapely.Point(m.lonlat))
        assert (rows["lon"][i], rows["lat"][i]) == pytest.approx(m.lonlat, abs=1e-9)
        assert west <= poly.bounds[0] and poly.bounds[2] <= east + 1e-9
        assert south <= poly.bounds[1] and poly.bounds[3] <= north + 1e-9


def test_ungeoreferenced_tiles_have_no_geometry(tmp_path: Path, make_geotiff,
                                                build_store) -> None:
    plain = make_geotiff(tmp_path / "plain.tif", 400, 300, crs=None, seed=3)
    store = build_store([plain], path=tmp_path / "plain.tiles")
    write_geoparquet(store, tmp_path / "p.parquet", paths=False)
    rows = pq.read_table(tmp_path / "p.parquet").to_pydict()
    assert rows["geometry"] == [None] * store.count and rows["source"][0] == "plain.tif"
    assert rows["lon"] == rows["lat"] == [None] * store.count  # null, not NaN


def test_export_fingerprints_from_the_cli(tmp_path: Path, closed_store: Path, capsys,
                                          monkeypatch) -> None:
    out = tmp_path / "fp.parquet"
    code, _, err = run_cli(["export-fingerprints", closed_store, out, "--names-only"],
                           capsys, monkeypatch)
    assert code == 0 and "24 tiles" in err
    assert set(pq.read_table(out).to_pydict()["source"]) == {"a.tif", "b.tif"}
    code, _, err = run_cli(["export-fingerprints", tmp_path / "nothing.tiles",
                            tmp_path / "x.parquet"], capsys, monkeypatch)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.parquet").exists()
    assert api.export_fingerprints(closed_store, tmp_path / "again.parquet") == 24
