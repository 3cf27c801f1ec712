"""The web app's geographic map: every georeferenced image on one Web Mercator map (rio-tiler
tiles with masks, first-indexed on top), their footprints, the tile under a point, hits'
lon/lat outlines, the find heatmap as map tiles, and the optional basemap."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from conftest import write_geotiff, write_png
from fakes import FakeModel, run_cli

pytest.importorskip("fastapi")
pytest.importorskip("rio_tiler")
from fastapi.testclient import TestClient
from PIL import Image

from tilesearch import api
from tilesearch.errors import OptionError
from tilesearch.raster import native_zoom
from tilesearch.web import create_app

DEG = 4e-6
"""Pixel of the EPSG:4326 image, in degrees (about 0.31 x 0.44 m at 45 N)."""


def lonlat_tile(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """Web Mercator tile (x, y) holding a point, and the point's pixel in it."""
    n = 2 ** z
    fx = (lon + 180) / 360 * n
    fy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(fx), int(fy), (fx % 1) * 256, (fy % 1) * 256


@pytest.fixture
def two_crs(tmp_path, monkeypatch):
    """A store (fake model, --gsd auto) of a UTM image at 0.5 m and a lon/lat image at about
    0.38 m east of it, overlapping its east part; and the two files."""
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    from affine import Affine

    utm = write_geotiff(tmp_path / "utm.tif", 600, 500, crs="EPSG:32633", seed=1)
    deg = write_geotiff(tmp_path / "deg.tif", 600, 500, crs="EPSG:4326", seed=2,
                        transform=Affine(DEG, 0, 15.0025, 0, -DEG, 44.9995))
    report = api.index([utm, deg], tmp_path / "s.tiles", model="fake")
    assert len(report.indexed) == 2 and not report.failed
    return tmp_path / "s.tiles", utm, deg


def client(path, **options) -> TestClient:
    return TestClient(create_app(path, warm=False, **options), base_url="http://127.0.0.1")


def png(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(resp.content)))


def reprojected(path, x: int, y: int, z: int) -> tuple[np.ndarray, np.ndarray]:
    """Map tile (z, x, y) of one file warped by rasterio on its own: RGB and coverage."""
    import rasterio
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject

    from tilesearch.raster.mercator import mercator_bounds

    out = np.zeros((3, 256, 256), np.uint8)
    with rasterio.open(path) as src:
        reproject(src.read(), out, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=from_bounds(*mercator_bounds(x, y, z), 256, 256),
                  dst_crs="EPSG:3857", resampling=Resampling.bilinear, dst_nodata=0)
        cover = np.zeros((256, 256), np.uint8)
        reproject(np.ones((src.height, src.width), np.uint8), cover,
                  src_transform=src.transform, src_crs=src.crs,
                  dst_transform=from_bounds(*mercator_bounds(x, y, z), 256, 256),
                  dst_crs="EPSG:3857", resampling=Resampling.nearest, dst_nodata=0)
    return out.transpose(1, 2, 0), cover > 0


def test_map_lists_both_images_in_their_crs_with_zooms_to_the_finest(two_crs):
    path, _, _ = two_crs
    with client(path) as c:
        m = c.get("/api/map").json()
    feats = m["footprints"]["features"]
    assert [f["properties"]["name"] for f in feats] == ["utm.tif", "deg.tif"]
    assert [f["properties"]["crs"] for f in feats] == ["EPSG:32633", "EPSG:4326"]
    gsds = [f["properties"]["gsd"] for f in feats]
    assert gsds[0] == pytest.approx(0.5, rel=1e-3) and gsds[1] < 0.45
    west, south, east, north = m["bounds"]
    assert west == pytest.approx(15.0) and north == pytest.approx(45.0)
    assert east == pytest.approx(15.0025 + 600 * DEG)
    assert south == pytest.approx(44.9995 - 500 * DEG)
    assert m["max_zoom"] == native_zoom(min(gsds), (south + north) / 2)
    assert m["basemap"] is None and "{z}/{x}/{y}.png?v=" in m["tiles"]


def test_map_tiles_are_the_images_warped_first_indexed_on_top(two_crs):
    path, utm, deg = two_crs
    with client(path) as c:
        m = c.get("/api/map").json()
        z = m["max_zoom"] - 2
        # a tile over the east edge of the UTM image, where the lon/lat image overlaps it
        x, y, _, _ = lonlat_tile(15.0034, 44.9986, z)
        got = png(c.get(m["tiles"].format(z=z, x=x, y=y)))
    a, in_a = reprojected(utm, x, y, z)
    b, in_b = reprojected(deg, x, y, z)
    assert in_a.any() and in_b.any() and (in_b & ~in_a).any()
    drawn = got[..., 3] == 255
    inner = in_a.copy()  # away from the UTM image's edge, where resampling differs
    inner[1:-1, 1:-1] &= in_a[:-2, 1:-1] & in_a[2:, 1:-1] & in_a[1:-1, :-2] & in_a[1:-1, 2:]
    assert drawn[inner].all()
    diff_a = np.abs(got[..., :3].astype(int) - a)[inner & in_b].mean()
    diff_b = np.abs(got[..., :3].astype(int) - b)[inner & in_b].mean()
    assert diff_a < 6 < diff_b  # the overlap shows the first image, not the second
    only_b = in_b & ~in_a
    assert drawn[only_b].mean() > 0.95
    assert np.abs(got[..., :3].astype(int) - b)[only_b & drawn].mean() < 6


def test_map_tiles_outside_every_image_answer_404(two_crs):
    path, _, _ = two_crs
    with client(path) as c:
        m = c.get("/api/map").json()
        far = c.get(m["tiles"].format(z=10, x=0, y=0))
        deep = c.get(m["tiles"].format(z=m["max_zoom"] + 1, x=0, y=0))
    assert far.status_code == 404 and "shows no image" in far.json()["detail"]
    assert deep.status_code == 404 and "beyond" in deep.json()["detail"]


def test_tile_under_a_point_in_either_image_and_hits_outlined_in_lonlat(two_crs):
    path, _, _ = two_crs
    with client(path) as c:
        images = {im["name"]: im["id"] for im in c.get("/api/images").json()}
        west = c.get("/api/map/tile-at?lon=15.0004&lat=44.9996").json()
        east = c.get(f"/api/map/tile-at?lon={15.0025 + 590 * DEG}&lat=44.9994").json()
        nowhere = c.get("/api/map/tile-at?lon=16&lat=44")
        result = c.post("/api/search", json={"tile": east["tile_id"], "k": 5}).json()
    assert west["image_id"] == images["utm.tif"] and east["image_id"] == images["deg.tif"]
    assert nowhere.status_code == 404 and "no georeferenced image" in nowhere.json()["detail"]
    for tile in [west, east, result["query_tile"], *result["results"]]:
        ring = np.array(tile["footprint"])
        assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
        assert ring[:4, 0].min() < tile["lon"] < ring[:4, 0].max()
        assert ring[:4, 1].min() < tile["lat"] < ring[:4, 1].max()
        assert ring[:4].mean(axis=0) == pytest.approx([tile["lon"], tile["lat"]], abs=1e-6)


def test_a_store_without_georeferencing_has_an_empty_map(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    api.index([write_png(tmp_path / "p.png", 600, 500)], tmp_path / "s.tiles", model="fake")
    with client(tmp_path / "s.tiles") as c:
        m = c.get("/api/map").json()
        tile = c.get("/api/tiles/0").json()
        assert c.get("/api/map/tiles/0/0/0.png").status_code == 404
    assert m["footprints"]["features"] == [] and tile["footprint"] is None


def test_find_heatmap_as_map_tiles_over_the_labelled_places(two_crs):
    path, _, _ = two_crs
    with client(path) as c:
        here = c.get("/api/map/tile-at?lon=15.0004&lat=44.9996").json()
        there = c.get(f"/api/map/tile-at?lon={15.0025 + 590 * DEG}&lat=44.9994").json()
        c.post("/api/labels/pools", json={"positives": [here["tile_id"]],
                                          "negatives": [there["tile_id"]]})
        found = c.get("/api/labels/pools/find?threshold=0.5").json()
        z = c.get("/api/map").json()["max_zoom"] - 1
        x, y, px, py = lonlat_tile(here["lon"], here["lat"], z)
        heat = png(c.get(found["heatmap_tiles"].format(z=z, x=x, y=y)))
        far = c.get(found["heatmap_tiles"].format(z=z, x=0, y=0))
    assert found["heatmap"] is None
    r, _, b, alpha = heat[int(py), int(px)]
    assert alpha > 0 and r > b  # the positive tile: red end of the ramp, drawn
    assert far.status_code == 404


def test_basemap_is_offered_only_when_given_and_checked(two_crs, capsys, monkeypatch):
    path, _, _ = two_crs
    url = "https://tiles.example/{z}/{x}/{y}.png"
    with client(path, basemap=url) as c:
        assert c.get("/api/map").json()["basemap"] == url
    for bad in ("ftp://tiles.example/{z}/{x}/{y}.png", "https://tiles.example/tile.png"):
        with pytest.raises(OptionError, match="XYZ tile URL template"):
            create_app(path, warm=False, basemap=bad)
    code, _, err = run_cli(["serve", path, "--basemap", "https://x/{z}.png"], capsys,
                             monkeypatch)
    assert code != 0 and "--basemap" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
