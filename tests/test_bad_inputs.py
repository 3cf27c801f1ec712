"""Bad inputs to `index`: non-finite pixels, the same file twice, odd folders, truncated and
huge empty files, and a store path that cannot be one. Each reproduces a finding of a hostile
test (issue 18)."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_geotiff
from fakes import FakeModel, run_cli

from tilesearch import api, raster
from tilesearch.ingest import index_images
from tilesearch.store import Store
from tilesearch.tiling import Window


def run(args, capsys, monkeypatch):
    """`tilesearch ARGS` with the fake model; returns (exit code, stdout, stderr)."""
    return run_cli(args, capsys, monkeypatch, fake_model=True)


def new_store(path):
    return Store.create(path, FakeModel.identity)


def float_tiff(path, values):
    """A 512 x 512 float32 GeoTIFF (no nodata declared) of the seeded pattern, with `values`
    (NaN, inf) painted in a quarter of it."""
    write_geotiff(path, 512, 512, crs="EPSG:32633", dtype="float32", seed=4)
    with rasterio.open(path, "r+") as ds:
        data = ds.read()
        for i, v in enumerate(values):
            data[i % 3, 100 * i:100 * i + 60, :300] = v
        ds.write(data)
    return path


def test_non_finite_pixels_are_invalid_and_the_stretch_is_finite(tmp_path):
    path = float_tiff(tmp_path / "f.tif", [np.nan, np.inf, -np.inf])
    with raster.open_image(path) as src:
        assert np.isfinite(np.asarray(src.info.stretch)).all()
        tile = src.read_tiles([Window(0, 0, 256, 256)])[0]
        assert not tile.valid[0:60, :256].any() and tile.valid[70:90].all()
    with new_store(tmp_path / "s.tiles") as s:
        report = index_images([path], s, FakeModel())
        assert report.tiles_added == 8 and not report.failed  # (0, 0) is 69 % NaN: dropped
        assert s.tile_at(1, Window(0, 0, 256, 256)) is None
        assert len(np.unique(s.vectors(), axis=0)) == 8


def test_an_image_without_a_finite_pixel_is_a_bad_file(tmp_path):
    path = write_geotiff(tmp_path / "nan.tif", 300, 300, crs="EPSG:32633", dtype="float32")
    with rasterio.open(path, "r+") as ds:
        ds.write(np.full((3, 300, 300), np.nan, np.float32))
    with new_store(tmp_path / "s.tiles") as s:
        report = index_images([path], s, FakeModel())
    assert report.failed == [(str(path), "no valid pixel with a finite value (all NaN, "
                                         "infinite or nodata)")]


def test_the_same_file_reached_twice_is_indexed_once(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    a = write_geotiff(folder / "a.tif", 300, 300, crs="EPSG:32633")
    (tmp_path / "link").symlink_to(folder)
    with new_store(tmp_path / "s.tiles") as s:
        report = index_images([a, a, folder, tmp_path / "link", tmp_path / "link" / "a.tif"],
                              s, FakeModel())
        assert report.indexed == [(str(a), 4)] and not report.failed and s.count == 4


def test_odd_folder_entries_are_reported(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    (root / "deep").mkdir(parents=True)
    (root / "locked").mkdir()
    write_geotiff(root / "deep" / "a.tif", 300, 300, crs="EPSG:32633")
    (root / "deep" / "loop").symlink_to(root)
    (root / "gone.tif").symlink_to(tmp_path / "nowhere.tif")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, errors = raster.find_images([root])
    assert files == [(root / "deep" / "a.tif").resolve()]
    reasons = {Path(e.path).name: e.reason for e in errors}
    assert reasons == {"locked": "folder cannot be listed (Permission denied)",
                       "loop": "symbolic link loop (links to a folder above it); skipped",
                       "gone.tif": "broken symbolic link (its target does not exist)"}


def tiled_tiff(path, size=1024):
    write_geotiff(path, size, size, crs="EPSG:32633", seed=5)
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    profile.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_a_file_failing_part_way_keeps_its_tiles_and_says_so(tmp_path, capsys, monkeypatch):
    path = tiled_tiff(tmp_path / "cut.tif")
    with open(path, "r+b") as f:
        f.truncate(int(path.stat().st_size * 0.6))
    code, out, err = run(["index", path, "--store", tmp_path / "s.tiles", "-q",
                          "--batch-size", 8], capsys,
                         monkeypatch)
    with Store.open(tmp_path / "s.tiles") as s:
        count, image = s.count, s.images()[0]
    assert code == 0 and count > 0 and image["status"] == "failed"
    assert f"indexed 0 image(s) and 1 in part, {count} tiles" in out
    assert f"its {count} tiles indexed so far stay searchable" in err
    assert "previous exception" not in err and "read failed" in err


def test_a_truncated_file_names_gdals_reason(tmp_path):
    path = tiled_tiff(tmp_path / "cut.tif")
    with open(path, "r+b") as f:
        f.truncate(int(path.stat().st_size * 0.3))
    with new_store(tmp_path / "s.tiles") as s:
        report = index_images([path], s, FakeModel())
    (reason,) = [r for _, r in report.failed]
    assert "previous exception" not in reason and "TIFFRead" in reason


def test_a_huge_empty_sparse_raster_is_rejected_without_reading_tiles(tmp_path, monkeypatch):
    path = tmp_path / "sparse.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20000, height=20000, count=3,
                       dtype="uint8", nodata=0, tiled=True, sparse_ok=True, crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 5e6, 0.1, 0.1)):
        pass
    reads = []
    monkeypatch.setattr(raster.RasterSource, "read_tiles",
                        lambda self, windows: reads.append(windows) or [])
    with new_store(tmp_path / "s.tiles") as s:
        report = index_images([path], s, FakeModel())
    assert "valid pixels" in report.failed[0][1] and reads == []


def test_a_failed_index_leaves_no_new_store(tmp_path, capsys, monkeypatch):
    (tmp_path / "junk.tif").write_text("not a tiff")
    code, _, err = run(["index", tmp_path / "junk.tif", "--store", tmp_path / "s.tiles"],
                       capsys, monkeypatch)
    assert code == 1 and "junk.tif: not a readable image" in err
    assert not (tmp_path / "s.tiles").exists()


def test_store_paths_that_cannot_be_stores(tmp_path, capsys, monkeypatch):
    a = write_geotiff(tmp_path / "a.tif", 300, 300, crs="EPSG:32633")
    (tmp_path / "file").write_text("x")
    code, _, err = run(["index", a, "--store", tmp_path / "file"], capsys, monkeypatch)
    assert code == 2 and err.strip().splitlines() == [
        f"error: {tmp_path / 'file'}: is a file, not a store folder; name a folder for the "
        "store"]


def test_disk_full_is_one_line_and_the_store_stays_consistent(tmp_path, capsys, monkeypatch):
    from tilesearch.store import store as store_mod

    a = write_geotiff(tmp_path / "a.tif", 300, 300, crs="EPSG:32633")
    b = write_geotiff(tmp_path / "b.tif", 300, 300, crs="EPSG:32633", seed=3)
    assert run(["index", a, "--store", tmp_path / "s.tiles", "-q"], capsys, monkeypatch)[0] == 0

    def full(path, data):
        with open(path, "ab") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store_mod, "_append_synced", full)
    code, _, err = run(["index", b, "--store", tmp_path / "s.tiles", "-q"], capsys, monkeypatch)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "no space left on the disk" in err and "Traceback" not in err
    with Store.open(tmp_path / "s.tiles") as s:
        assert s.count == 4 and api.check(s.path).ok


def test_a_store_created_meanwhile_by_another_process(tmp_path, monkeypatch):
    from tilesearch.errors import StoreError
    from tilesearch.store import store as store_mod

    real_rename, raced = os.rename, []

    def rename(src, dst):
        if not raced:  # the other process wins the race
            raced.append(dst)
            Store.create(dst, FakeModel.identity).close()
        return real_rename(src, dst)

    monkeypatch.setattr(store_mod.os, "rename", rename)
    with pytest.raises(StoreError, match="another process created this store meanwhile"):
        Store.create(tmp_path / "s.tiles", FakeModel.identity)
    assert [p.name for p in tmp_path.iterdir()] == ["s.tiles"]


def test_bad_options_are_refused_before_any_store_is_made(tmp_path, capsys, monkeypatch):
    a = write_geotiff(tmp_path / "a.tif", 300, 300, crs="EPSG:32633")
    for opt, value in (("--tile-size", 0), ("--stride", -5), ("--max-invalid", 3),
                       ("--batch-size", 0)):
        code, _, err = run(["index", a, "--store", tmp_path / "s.tiles", opt, value], capsys,
                           monkeypatch)
        assert code == 2 and f"Invalid value for '{opt}'" in err
    assert not (tmp_path / "s.tiles").exists()


def test_a_codec_faiss_rejects_is_one_line(fake_store, capsys, monkeypatch):
    path = fake_store.path
    fake_store.close()
    before = sorted(p.name for p in path.rglob("*"))
    code, _, err = run(["build-index", path, "--codec", "garbage", "--force"], capsys,
                       monkeypatch)
    assert code == 2 and err.startswith("error: codec 'garbage' is not a FAISS index factory")
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in path.rglob("*")) == before


def test_serve_passes_host_names_and_path_exposure_on(tmp_path, capsys, monkeypatch):
    import tilesearch.web as web

    seen = {}
    monkeypatch.setattr(web, "serve", lambda store, **kw: seen.update(kw))
    run(["serve", tmp_path, "--allow-host", "survey-box", "--allow-host", "10.0.0.5",
         "--expose-paths"], capsys, monkeypatch)
    assert seen["allowed_hosts"] == ("survey-box", "10.0.0.5") and seen["expose_paths"]
    run(["serve", tmp_path], capsys, monkeypatch)
    assert seen["allowed_hosts"] == () and not seen["expose_paths"]
