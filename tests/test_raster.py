import numpy as np
import pytest
from conftest import invalid_region
from rasterio.warp import transform as warp

from tilesearch.errors import InputError
from tilesearch.raster import find_images, open_image
from tilesearch.tiling import Window, tile_grid


def _full(src):
    return src.read_block(Window(0, 0, src.info.width, src.info.height))


def test_rgb_without_mask_treats_black_as_invalid(tmp_path, make_geotiff):
    import rasterio

    path = make_geotiff(tmp_path / "rgb.tif", 300, 280, crs="EPSG:32633")
    with rasterio.open(path, "r+") as ds:
        data = ds.read()
        data[:, :50, :60] = 0
        ds.write(data)
    with open_image(path) as src:
        assert src.info.mask == "zero"
        pixels, valid = _full(src)
    assert pixels.shape == (280, 300, 3) and pixels.dtype == np.uint8
    assert not valid[:50, :60].any()
    assert valid[60:, 70:].all()


@pytest.mark.parametrize("kind", ["alpha", "nodata"])
def test_alpha_and_nodata_masks(tmp_path, make_geotiff, kind):
    kw = {"alpha": True} if kind == "alpha" else {"nodata": 0}
    path = make_geotiff(tmp_path / f"{kind}.tif", 320, 300, crs="EPSG:3857", **kw)
    with open_image(path) as src:
        assert src.info.mask == kind
        assert src.info.bands == (1, 2, 3)
        _, valid = _full(src)
    np.testing.assert_array_equal(valid, ~invalid_region(320, 300))


def test_internal_mask(tmp_path, make_geotiff):
    import rasterio

    path = make_geotiff(tmp_path / "m.tif", 300, 300, crs="EPSG:3857")
    hole = invalid_region(300, 300)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        ds.write_mask(np.where(hole, 0, 255).astype(np.uint8))
    with open_image(path) as src:
        assert src.info.mask == "internal"
        _, valid = _full(src)
    np.testing.assert_array_equal(valid, ~hole)


def test_uint16_is_stretched_between_percentiles(tmp_path, make_geotiff):
    path = make_geotiff(tmp_path / "u16.tif", 400, 300, crs="EPSG:32633", dtype="uint16")
    with open_image(path) as src:
        assert src.info.stretch is not None and len(src.info.stretch) == 3
        pixels, _ = _full(src)
    assert pixels.dtype == np.uint8
    for band in range(3):
        low, high = np.percentile(pixels[..., band], [1, 99])
        assert low <= 5 and high >= 250  # the 2-98 % stretch fills the 8-bit range


def test_band_selection_and_errors(tmp_path, make_geotiff):
    path = make_geotiff(tmp_path / "b4.tif", 300, 300, crs="EPSG:32633", bands=4)
    with open_image(path, bands=[3, 2, 1]) as src:
        swapped, _ = _full(src)
    with open_image(path) as src:
        plain, _ = _full(src)
    np.testing.assert_array_equal(swapped, plain[..., ::-1])
    with open_image(path, bands=[4]) as src:
        grey, _ = _full(src)
    assert (grey[..., 0] == grey[..., 2]).all()
    with pytest.raises(InputError, match=r"b4\.tif.*--bands 5,1,2"):
        open_image(path, bands=[5, 1, 2])


def test_tiles_carry_window_bounds_and_lonlat(tmp_path, make_geotiff):
    path = make_geotiff(tmp_path / "g.tif", 600, 500, crs="EPSG:32633")
    with open_image(path) as src:
        tiles = src.read_tiles(tile_grid(600, 500, 256, 128))
        aff = src._ds.transform
    assert [t.window for t in tiles] == tile_grid(600, 500, 256, 128)
    t = tiles[5]
    cx, cy = aff @ (t.window.col_off + 128, t.window.row_off + 128)
    lon, lat = warp("EPSG:32633", "EPSG:4326", [cx], [cy])
    assert t.lonlat == pytest.approx((lon[0], lat[0]), abs=1e-9)
    assert t.crs == "EPSG:32633"
    x0, y1 = aff @ (t.window.col_off, t.window.row_off)
    assert t.bounds == pytest.approx((x0, y1 - 128, x0 + 128, y1))
    lb = t.lonlat_bounds
    assert lb[0] < lon[0] < lb[2] and lb[1] < lat[0] < lb[3]
    with open_image(path) as src:
        block, _ = src.read_block(t.window)
    np.testing.assert_array_equal(block, t.pixels)


def test_plain_png_has_no_coordinates(tmp_path, make_png):
    path = make_png(tmp_path / "p.png", 300, 260)
    with open_image(path) as src:
        assert not src.info.georeferenced
        tiles = src.read_tiles(tile_grid(300, 260, 256, 128))
    assert tiles and all(t.lonlat is None and t.bounds is None for t in tiles)


def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make_geotiff):
    text = tmp_path / "notes.tif"
    text.write_text("not an image")
    with pytest.raises(InputError) as err:
        open_image(text)
    assert "notes.tif" in str(err.value) and "\n" not in str(err.value)

    good = make_geotiff(tmp_path / "whole.tif", 600, 600, crs="EPSG:3857")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(InputError, match=r"cut\.tif") as err, open_image(cut) as src:
        src.read_tiles(tile_grid(600, 600, 256, 128))
    assert "\n" not in str(err.value)

    with pytest.raises(InputError, match=r"missing\.tif"):
        open_image(tmp_path / "missing.tif")


def test_find_images_walks_folders_and_reports_missing(tmp_path, make_geotiff, make_png):
    (tmp_path / "sub").mkdir()
    a = make_geotiff(tmp_path / "sub" / "a.tif", 300, 300, crs="EPSG:3857")
    b = make_png(tmp_path / "b.png", 300, 300)
    (tmp_path / "readme.txt").write_text("x")
    found, errors = find_images([tmp_path, tmp_path / "nope"])
    assert found == sorted([a.resolve(), b.resolve()])
    assert len(errors) == 1 and "no such file" in errors[0].reason


@pytest.mark.realdata
def test_real_orthos_masks(real_data):
    expect = {"odm_portugal_z21_rgba.tif": ("alpha", 0.66),
              "quarry_callas_france_cog_jpeg.tif": ("internal", 0.59)}
    for name, (kind, fraction) in expect.items():
        with open_image(real_data / "orthos" / name) as src:
            assert src.info.mask == kind
            assert src.info.crs is not None
            mask = src._ds.dataset_mask(out_shape=(500, 500))
        assert (mask > 0).mean() == pytest.approx(fraction, abs=0.03)
