"""External overviews of rasters lacking them: <image>.ovr beside a writable GeoTIFF, or a VRT
with its .ovr in the store folder; `tilesearch overviews` and `serve --build-overviews`."""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pytest

from tilesearch import api, raster
from tilesearch.tiling import Window


def digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_levels_go_down_to_a_small_long_side():
    assert raster.overview_levels(1200, 900) == [2, 4, 8]
    assert raster.overview_levels(20_000, 15_000) == [2, 4, 8, 16, 32, 64, 128]
    assert raster.overview_levels(200, 200) == []


def test_ovr_beside_a_geotiff_is_used_by_read_scaled(tmp_path, make_geotiff):
    import rasterio

    path = make_geotiff(tmp_path / "big.tif", 1200, 900, crs="EPSG:32633", seed=4)
    before, mtime = digest(path), path.stat().st_mtime_ns
    with raster.open_image(path) as src:
        assert src.overview_factors == []
        want, _ = src.read_scaled(Window(0, 0, 1200, 900), 300, 225)
    source, levels = raster.build_overviews(path, tmp_path / "store" / "overviews")
    assert source == path and levels == [2, 4, 8]
    assert (tmp_path / "big.tif.ovr").is_file() and not (tmp_path / "store").exists()
    assert digest(path) == before and path.stat().st_mtime_ns == mtime  # image untouched
    with rasterio.open(path, "r+") as ds:  # blank the full-resolution pixels only
        ds.write(np.zeros((3, 900, 1200), np.uint8))
    with raster.open_image(path) as src:
        assert src.overview_factors == [2, 4, 8]
        assert not src.read_block(Window(0, 0, 64, 64))[0].any()
        got, _ = src.read_scaled(Window(0, 0, 1200, 900), 300, 225)
    assert got.any() and np.abs(got.astype(int) - want).mean() < 2  # from the .ovr
    assert raster.build_overviews(path, tmp_path / "o") == (path, [])  # has them now


@pytest.mark.parametrize("kind", ["read-only folder", "png"])
def test_vrt_with_overviews_in_the_store_folder(tmp_path, make_geotiff, make_png, kind):
    folder = tmp_path / "store" / "overviews"
    if kind == "png":
        path = make_png(tmp_path / "photo.png", 1000, 700, seed=5)
        source, levels = raster.build_overviews(path, folder)
    else:
        path = make_geotiff(tmp_path / "big.tif", 1000, 700, crs="EPSG:3857", nodata=0, seed=5)
        source, levels = raster.build_overviews(path, folder, beside=False)
    assert levels == [2, 4] and source.parent == folder and source.suffix == ".vrt"
    assert (folder / f"{source.name}.ovr").is_file()
    assert not (tmp_path / f"{path.name}.ovr").exists()
    assert raster.overview_source(path, folder) == str(source)
    assert raster.overview_source(path, None) == str(path.resolve())
    with raster.open_image(path) as direct, raster.open_image(source) as via:
        assert via.overview_factors == [2, 4]
        assert (via.info.width, via.info.height) == (1000, 700)
        a, va = direct.read_scaled(Window(0, 0, 1000, 700), 250, 175)
        b, vb = via.read_scaled(Window(0, 0, 1000, 700), 250, 175)
    assert (va == vb).mean() > 0.97 and np.abs(a.astype(int) - b)[va & vb].mean() < 3
    later = source.stat().st_mtime + 10
    os.utime(path, (later, later))  # the image changed after its overviews were built
    assert raster.overview_source(path, folder) == str(path.resolve())


def test_overviews_command_and_serve_option(monkeypatch, fake_store, capsys):
    import uvicorn

    from tilesearch.cli import main

    fake_store.close()
    a = fake_store.path.parent / "a.tif"
    monkeypatch.setattr(sys, "argv", ["tilesearch", "overviews", str(fake_store.path)])
    main()
    out = capsys.readouterr().out
    assert out.count("built 1/2, 1/4 beside it") == 2 and a.with_name("a.tif.ovr").is_file()
    main()
    assert capsys.readouterr().out.count("has overviews already") == 2

    a.with_name("a.tif.ovr").unlink()
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.setattr(sys, "argv", ["tilesearch", "serve", str(fake_store.path),
                                      "--build-overviews"])
    main()
    assert a.with_name("a.tif.ovr").is_file()


def test_build_overviews_reports_failures(fake_store):
    fake_store.close()
    (fake_store.path.parent / "b.tif").write_bytes(b"gone bad")
    got = {os.path.basename(r["path"]): r for r in api.build_overviews(fake_store.path)}
    assert got["a.tif"]["levels"] == [2, 4] and got["a.tif"]["error"] is None
    assert got["b.tif"]["levels"] == [] and "not a readable image" in got["b.tif"]["error"]
