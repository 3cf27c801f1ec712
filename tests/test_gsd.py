"""One ground scale per store: every georeferenced image read at the store's metres a pixel,
so that every tile covers the same ground (`index --gsd`)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern, write_geotiff, write_png
from fakes import FakeModel, run_cli

from tilesearch import api, geo
from tilesearch.errors import OptionError, StoreError
from tilesearch.options import IndexOptions
from tilesearch.raster import open_image
from tilesearch.retrieval import SearchFilter, fingerprints
from tilesearch.store import Store
from tilesearch.tiling import Window, read_scale, scaled_span, tile_grid

UTM = "EPSG:32631"


def _pair(root: Path, factors=(1, 2), size=1024, gsd=0.1) -> list[Path]:
    """The same seeded scene at `gsd` x each factor (averaged down with rasterio), one
    origin: tiles read at one GSD then cover the same ground in every copy."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    fine = root / "x1.tif"
    data = (pattern(size, size, 3, seed=5) * 255).astype(np.uint8)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "crs": UTM, "transform": from_origin(500000, 4800000, gsd, gsd)}
    with rasterio.open(fine, "w", **profile) as out:
        out.write(data)
    paths = []
    for f in factors:
        if f == 1:
            paths.append(fine)
            continue
        with rasterio.open(fine) as src:
            small = src.read(out_shape=(3, size // f, size // f), resampling=Resampling.average)
        p = root / f"x{f}.tif"
        with rasterio.open(p, "w", **{**profile, "width": size // f, "height": size // f,
                                      "transform": from_origin(500000, 4800000, gsd * f,
                                                               gsd * f)}) as out:
            out.write(small)
        paths.append(p)
    return paths


def _tiles(s: Store, image_id: int):
    return s.tiles(s.tile_ids_of_images([image_id]).tolist())


def _index(paths, store, **options):
    return api.index([str(p) for p in paths], store, model="fake", **options)


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch):
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())


def test_ground_resolution_is_metres_on_the_ground_in_every_crs(tmp_path):
    utm = write_geotiff(tmp_path / "u.tif", 300, 300, crs="EPSG:32633", pixel_size=0.25)
    merc = write_geotiff(tmp_path / "m.tif", 300, 300, crs="EPSG:3857", pixel_size=0.25)
    deg = write_geotiff(tmp_path / "d.tif", 300, 300, crs="EPSG:4326", pixel_size=2e-6)
    with open_image(utm) as a, open_image(merc) as b, open_image(deg) as c:
        assert a.info.gsd == pytest.approx(0.25, rel=1e-3)
        lat = c.info.transform[5]  # the anchor latitude the fixtures share
        assert b.info.gsd == pytest.approx(0.25 * np.cos(np.radians(lat)), rel=0.01)
        assert c.info.gsd == pytest.approx(2e-6 * geo.METRES_PER_DEGREE
                                           * np.sqrt(np.cos(np.radians(lat))), rel=0.02)
    png = write_png(tmp_path / "p.png", 300, 300)
    with open_image(png) as p, open_image(png, pixel_size=0.3) as q:
        assert p.info.gsd is None and q.info.gsd == 0.3


def test_auto_takes_the_first_image_and_tiles_cover_the_same_ground(tmp_path):
    coarse, fine = _pair(tmp_path, (2, 1))
    report = _index([coarse, fine], tmp_path / "s.tiles")
    assert len(report.indexed) == 2
    with Store.open(tmp_path / "s.tiles") as s:
        assert s.gsd == pytest.approx(0.2)
        tiles = {Path(i["info"].path).name: _tiles(s, i["id"]) for i in s.images()}
        assert {t.window.width for t in tiles["x1.tif"]} == {512}  # 256 px of 0.2 m
        assert {t.window.width for t in tiles["x2.tif"]} == {256}
        by_ground = {t.bounds: t.tile_id for t in tiles["x1.tif"]}
        assert sorted(by_ground) == sorted(t.bounds for t in tiles["x2.tif"])
        # the fine image read at 0.2 m is the coarse image: the same place is the nearest
        for t in tiles["x2.tif"]:
            hits = api.search(s, tile=t.tile_id, k=1, exclude_self=False,
                              where=SearchFilter(images=["x1.tif"]))
            assert hits.hits[0].tile.bounds == t.bounds
        facts = api.info(s)
        assert facts["gsd"] == pytest.approx(0.2)
        assert facts["tile_ground_m"] == pytest.approx(51.2)


def test_scaled_reads_match_a_coarser_copy_and_do_not_depend_on_batching(tmp_path):
    fine, coarse = _pair(tmp_path, (1, 2))
    with open_image(fine) as f, open_image(coarse) as c:
        windows = tile_grid(1024, 1024, *scaled_span(256, 128, read_scale(0.2, f.info.gsd)))
        one = f.read_tiles(windows, 256)
        apart = [f.read_tiles([w], 256)[0] for w in windows]
        ref = c.read_tiles(tile_grid(512, 512, 256, 128), 256)
    for a, b, r in zip(one, apart, ref, strict=True):
        assert a.pixels.shape == (256, 256, 3) and np.array_equal(a.pixels, b.pixels)
        assert np.abs(a.pixels.astype(int) - r.pixels).mean() < 1.0


def test_coarser_images_are_upsampled_within_the_limit_else_skipped(tmp_path):
    fine, x2, x4 = _pair(tmp_path, (1, 2, 4))
    report = _index([fine, x2, x4], tmp_path / "s.tiles")
    assert [Path(p).name for p, _ in report.indexed] == ["x1.tif", "x2.tif"]
    (path, reason), = report.failed
    assert path.endswith("x4.tif")
    assert "4.0x coarser than the store's 0.1 m" in reason and "--gsd 0.4" in reason
    with Store.open(tmp_path / "s.tiles") as s:
        x2_tiles = _tiles(s, s.image(str(x2.resolve()))["id"])
        assert {t.window.width for t in x2_tiles} == {128}
    report = _index([x4], tmp_path / "s.tiles", max_upsample=4.0)
    assert [Path(p).name for p, _ in report.indexed] == ["x4.tif"]


def test_native_reads_every_image_at_its_own_pixels(tmp_path):
    fine, coarse = _pair(tmp_path, (1, 2))
    _index([fine, coarse], tmp_path / "s.tiles", gsd="native")
    with Store.open(tmp_path / "s.tiles") as s:
        assert s.gsd is None and s.gsd_setting == "native"
        assert {t.window.width for i in s.images() for t in _tiles(s, i["id"])} == {256}


def test_pixel_size_scales_images_without_georeferencing(tmp_path):
    (fine,) = _pair(tmp_path, (1,))
    png = write_png(tmp_path / "p.png", 600, 600)
    _index([fine, png], tmp_path / "s.tiles", gsd=0.2, pixel_size=0.1)
    with Store.open(tmp_path / "s.tiles") as s:
        row = s.image(str(png.resolve()))
        assert row["info"].gsd == 0.1
        assert {t.window.width for t in _tiles(s, row["id"])} == {512}


def test_bad_gsd_and_a_store_gsd_mismatch_are_clear_errors(tmp_path, capsys, monkeypatch):
    for bad in ("0", "abc", "5000"):
        with pytest.raises(OptionError, match=r"gsd must be metres a pixel from 0\.001"):
            IndexOptions(gsd=bad)
    (fine,) = _pair(tmp_path, (1,))
    code, _, err = run_cli(["index", fine, "-s", tmp_path / "s.tiles", "--gsd", "abc"],
                           capsys, monkeypatch, fake_model=True)
    assert code != 0 and "gsd must be metres a pixel" in err and "Traceback" not in err
    assert not (tmp_path / "s.tiles").exists()
    _index([fine], tmp_path / "s.tiles", gsd=0.2)
    with pytest.raises(StoreError, match=r"reads every tile at --gsd 0\.2, not 0\.3"):
        _index([fine], tmp_path / "s.tiles", gsd=0.3)
    code, out, _ = run_cli(["info", tmp_path / "s.tiles"], capsys, monkeypatch)
    assert code == 0 and "0.2 m a pixel: a tile covers 51.2 m x 51.2 m" in out
    code, out, _ = run_cli(["info", tmp_path / "s.tiles", "--json", "-"], capsys, monkeypatch)
    assert json.loads(out)["gsd"] == 0.2


def test_image_query_reads_one_tile_of_ground_at_the_store_gsd(tmp_path):
    coarse, fine = _pair(tmp_path, (2, 1))
    _index([coarse], tmp_path / "s.tiles")
    model = FakeModel()
    with Store.open(tmp_path / "s.tiles") as s:
        centre = next(t for t in _tiles(s, 1) if t.window.col_off == t.window.row_off == 128)
        want = fingerprints(s, [centre.tile_id])[0]
        # the fine image knows its GSD: its centre 512 px read at 0.2 m is the centre tile
        q = api.image_query(s, fine, model=model)
        assert np.abs(q.vector - want).max() < 0.02
        with open_image(fine) as src:  # the same as pixels with the gsd given
            pixels = src.read_block(Window(0, 0, 1024, 1024))[0]
        q2 = api.image_query(s, pixels, model=model, gsd=0.1)
        assert np.abs(q2.vector - want).max() < 0.03
        whole = api.image_query(s, pixels, model=model)  # no gsd: the whole image
        assert np.abs(whole.vector - want).max() > np.abs(q2.vector - want).max()
        with pytest.raises(OptionError):
            api.image_query(s, pixels, model=model, gsd="native")  # type: ignore[arg-type]


def test_an_upload_with_its_gsd_is_one_tile_of_ground(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from tilesearch.web import create_app

    coarse, fine = _pair(tmp_path, (2, 1))
    _index([coarse], tmp_path / "s.tiles")
    monkeypatch.setattr(api, "store_fingerprinter", lambda s, **kw: FakeModel())
    with open_image(fine) as src:
        pixels = src.read_block(Window(0, 0, 1024, 1024))[0]
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    with TestClient(create_app(tmp_path / "s.tiles", allowed_hosts=["testserver"])) as c:
        found = {}
        for gsd in (None, 0.1):
            r = c.post("/api/search/image", files={"file": ("f.png", png.getvalue())},
                       data={"params": json.dumps({"k": 1, "gsd": gsd})})
            assert r.status_code == 200, r.text
            found[gsd] = r.json()["results"][0]
        bad = c.post("/api/search/image", files={"file": ("f.png", png.getvalue())},
                     data={"params": json.dumps({"gsd": 0})})
        assert bad.status_code == 400
    w = found[0.1]["window"]
    assert (w["col_off"], w["row_off"]) == (128, 128)  # the centre tile of the 512 px image
    assert found[0.1]["distance"] < found[None]["distance"]


def test_a_run_that_registers_no_image_leaves_an_auto_store_unset(tmp_path):
    png = write_png(tmp_path / "p.png", 300, 300)
    _index([png], tmp_path / "s.tiles")
    before = (tmp_path / "s.tiles" / "manifest.json").read_bytes()
    (broken,) = _pair(tmp_path, (1,))
    broken.write_bytes(broken.read_bytes()[:4000])  # header intact, pixels truncated
    report = _index([broken], tmp_path / "s.tiles")
    assert report.failed and not report.indexed
    assert (tmp_path / "s.tiles" / "manifest.json").read_bytes() == before
