"""STAC inputs: a static Catalog (with a Collection inside), an ItemCollection and an Item
served over HTTP on 127.0.0.1 stand for their items' image assets; an item without an image
asset, or without the asset asked for, is reported in one line and the batch goes on."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from fakes import FakeModel, run_cli, serve_folder

from tilesearch import api
from tilesearch.options import SearchOptions
from tilesearch.outputs import export
from tilesearch.raster import expand_stac
from tilesearch.store import Store

pystac = pytest.importorskip("pystac")
pq = pytest.importorskip("pyarrow.parquet")
WHEN = datetime(2026, 1, 1)
BOX = [15.0, 44.99, 15.01, 45.0]
GEOM = {"type": "Polygon", "coordinates": [[[15.0, 44.99], [15.01, 44.99], [15.01, 45.0],
                                             [15.0, 45.0], [15.0, 44.99]]]}


@pytest.fixture(autouse=True)
def fake_model(monkeypatch):
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())


def item(name: str, href: str, key: str = "visual", media: str = pystac.MediaType.COG,
         roles: tuple[str, ...] = ("visual",)) -> pystac.Item:
    it = pystac.Item(name, GEOM, BOX, WHEN, {})
    it.add_asset(key, pystac.Asset(href, media_type=media, roles=list(roles)))
    it.add_asset("thumbnail", pystac.Asset(f"{name}.png", media_type=pystac.MediaType.PNG,
                                           roles=["thumbnail"]))
    return it


def test_a_static_catalog_stands_for_its_items_images(tmp_path, make_geotiff) -> None:
    root = tmp_path / "cat"
    cat = pystac.Catalog("survey", "two flights")
    col = pystac.Collection("flights", "flights", pystac.Extent(
        pystac.SpatialExtent([BOX]), pystac.TemporalExtent([[WHEN, None]])))
    cat.add_child(col)
    (root / "data").mkdir(parents=True)
    for name, seed in (("north", 1), ("south", 2)):
        make_geotiff(root / "data" / f"{name}.tif", 520, 400, crs="EPSG:32633", seed=seed)
        col.add_item(item(name, str(root / "data" / f"{name}.tif"), key="image",
                          media=pystac.MediaType.GEOTIFF, roles=("data",)))
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    report = api.index([root / "catalog.json"], tmp_path / "s.tiles")
    assert sorted(Path(p).name for p, _ in report.indexed) == ["north.tif", "south.tif"]
    assert all(Path(p).is_absolute() for p, _ in report.indexed) and not report.failed
    with Store.open(tmp_path / "s.tiles") as s:  # each image knows its STAC item
        assert sorted((Path(i["info"].path).name, i["info"].item) for i in s.images()) == [
            ("north.tif", "north"), ("south.tif", "south")]
        props = export.to_geojson(api.search(s, tile=0, options=SearchOptions(k=3)), s)
    assert {f["properties"]["item"] for f in props["features"]} <= {"north", "south"}
    assert props["features"][0]["properties"]["item"] is not None
    rows = pq.read_table(_parquet(tmp_path)).to_pydict()
    assert set(rows["item"]) == {"north", "south"}


def _parquet(tmp_path: Path) -> Path:
    out = tmp_path / "fp.parquet"
    api.export_fingerprints(tmp_path / "s.tiles", out)
    return out


def test_an_item_collection_with_relative_hrefs(tmp_path, make_geotiff) -> None:
    (tmp_path / "imgs").mkdir()
    make_geotiff(tmp_path / "imgs" / "a.tif", 520, 400, crs="EPSG:32633", seed=1)
    fc = pystac.ItemCollection([item("a", "imgs/a.tif"), item("b", "imgs/missing.tif")])
    (tmp_path / "items.json").write_text(json.dumps(fc.to_dict(transform_hrefs=False)))
    names, items, errors = expand_stac([tmp_path / "items.json"])
    assert names == [str(tmp_path / "imgs" / "a.tif"), str(tmp_path / "imgs" / "missing.tif")]
    assert items == {str(tmp_path / "imgs" / "a.tif"): "a",
                     str(tmp_path / "imgs" / "missing.tif"): "b"} and errors == []
    report = api.index([tmp_path / "items.json"], tmp_path / "s.tiles")
    assert [Path(p).name for p, _ in report.indexed] == ["a.tif"]
    assert [Path(p).name for p, _ in report.failed] == ["missing.tif"]


def test_an_item_by_url_reads_its_asset_by_url(tmp_path, make_geotiff) -> None:
    folder = tmp_path / "www"
    folder.mkdir()
    make_geotiff(folder / "a.tif", 520, 400, crs="EPSG:32633", seed=1)
    (folder / "a.json").write_text(json.dumps(item("a", "a.tif").to_dict(
        transform_hrefs=False)))
    with serve_folder(folder) as base:
        report = api.index([f"{base}/a.json"], tmp_path / "s.tiles")
    assert [p for p, _ in report.indexed] == [f"/vsicurl/{base}/a.tif"]
    with Store.open(tmp_path / "s.tiles") as s:
        assert [i["info"].item for i in s.images()] == ["a"]


def test_items_without_the_image_asset_are_reported(tmp_path, make_geotiff, capsys,
                                                    monkeypatch) -> None:
    make_geotiff(tmp_path / "a.tif", 520, 400, crs="EPSG:32633", seed=1)
    two = item("two", "a.tif", key="red", media=pystac.MediaType.GEOTIFF, roles=("data",))
    two.add_asset("nir", pystac.Asset("a.tif", media_type=pystac.MediaType.GEOTIFF,
                                      roles=["data"]))
    fc = pystac.ItemCollection([item("ok", "a.tif"), two])
    (tmp_path / "items.json").write_text(json.dumps(fc.to_dict(transform_hrefs=False)))
    report = api.index([tmp_path / "items.json"], tmp_path / "s.tiles")
    assert len(report.indexed) == 1
    (_, reason), = report.failed
    assert "'two' has 2 image assets (assets: red, thumbnail, nir); pick one with --asset" \
        in reason
    code, out, err = run_cli(["index", tmp_path / "items.json", "--asset", "nir", "--store",
                              tmp_path / "n.tiles", "-q"], capsys, monkeypatch,
                             fake_model=True)
    assert code == 0 and "indexed 1 image(s)" in out
    assert "no asset 'nir' (assets: visual, thumbnail)" in err
    code, _, err = run_cli(["index", tmp_path / "nope.json", "--store", tmp_path / "x.tiles"],
                           capsys, monkeypatch)
    assert code == 1 and "nope.json: no such file or folder" in err
    assert not (tmp_path / "x.tiles").exists()
