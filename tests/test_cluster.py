"""Indexing on a local two-worker Ray cluster gives the store a local run gives."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeBlockModel, FakeModel

from tilesearch.errors import MissingDependencyError
from tilesearch.ingest import index_images, open_or_create_store
from tilesearch.ingest.ray import import_ray, index_on_ray, make_shards, use_cluster
from tilesearch.store import Store
from tilesearch.tiling import tile_grid

HERE = Path(__file__).parent


def _store(path):
    return open_or_create_store(path, FakeModel(), tile_size=None, stride=None,
                                max_invalid=None)


def _rows(store: Store):
    """[(tile id, source, col, row, valid, lon, lat)] and the fingerprints, in id order."""
    metas = store.tiles(range(store.count))
    rows = [(m.tile_id, Path(m.source).name, m.window.col_off, m.window.row_off,
             round(m.valid_fraction, 9), m.lonlat) for m in metas]
    return rows, np.asarray(store.vectors())


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs whose workers can import the test fakes."""
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.fixture
def images(tmp_path, make_geotiff):
    folder = tmp_path / "imgs"
    folder.mkdir()
    make_geotiff(folder / "a.tif", 900, 700, crs="EPSG:32633", seed=1, alpha=True)
    make_geotiff(folder / "b.tif", 600, 500, crs="EPSG:3857", seed=2)
    make_geotiff(folder / "c.tif", 200, 100, crs="EPSG:3857", seed=3)  # smaller than a tile
    (folder / "d.tif").write_text("not an image")
    return folder


@pytest.mark.slow
def test_ray_store_equals_local_store_and_resumes(ray_cluster, images, tmp_path,
                                                  make_geotiff):
    with _store(tmp_path / "local.tiles") as local:
        expected_report = index_images([images], local, FakeModel(), batch_size=4)
        expected, expected_vecs = _rows(local)
    assert len(expected) > 30

    ticks: list[tuple[int, int]] = []

    def progress(total):
        ticks.append((total, 0))
        return lambda done, failed: ticks.append((done, failed))

    with _store(tmp_path / "ray.tiles") as store:
        report = index_on_ray([images], store, FakeModel, batch_size=4, workers=2,
                              shard_size=5, progress=progress)
        got, vecs = _rows(store)
        assert {Path(p).name for p, _ in store.failures()} == {"c.tif", "d.tif"}
    assert got == expected  # same tile ids, windows, validity and places
    np.testing.assert_allclose(vecs, expected_vecs, rtol=1e-6, atol=1e-6)
    assert sorted(report.indexed) == sorted(expected_report.indexed)
    assert sorted(p for p, _ in report.failed) == sorted(p for p, _ in expected_report.failed)
    assert ticks[0][0] == sum(d for d, _ in ticks[1:])  # every window counted once

    class Killed(BaseException):
        """Stands for the driver being killed: nothing below it catches it."""

    def stop_after(n):  # the driver dies after committing n shards
        def make(total):
            seen = []

            def tick(done, failed):
                seen.append(done)
                if len(seen) == n:
                    raise Killed
            return tick
        return make

    partial = tmp_path / "resumed.tiles"
    with _store(partial) as store, pytest.raises(Killed):
        index_on_ray([images], store, FakeModel, batch_size=4, workers=2, shard_size=5,
                     progress=stop_after(4))
    with Store.open(partial) as s:
        assert 0 < s.count < len(expected)
    with _store(partial) as store:
        again = index_on_ray([images], store, FakeModel, batch_size=4, workers=2,
                             shard_size=5)
        got, vecs = _rows(store)
    assert len(again.indexed) == 2
    assert got == expected  # no duplicates, nothing lost, same ids
    np.testing.assert_allclose(vecs, expected_vecs, rtol=1e-6, atol=1e-6)
    whole = make_geotiff(tmp_path / "whole.tif", 800, 800, crs="EPSG:3857")
    cut = tmp_path / "cut.tif"  # its header reads, its pixel blocks do not: fails on a worker
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with _store(partial) as store:
        last = index_on_ray([images, cut], store, FakeModel, workers=2)
        assert last.tiles_added == 0 and len(last.already_done) == 2
        assert [(Path(p).name, "corrupt" in r) for p, r in last.failed] == [
            ("c.tif", False), ("d.tif", False), ("cut.tif", True)]
        assert "cut.tif" in {Path(p).name for p, _ in store.failures()}
        assert store.count >= len(expected)  # blocks before the cut may be readable


@pytest.mark.slow
def test_ray_cuts_the_blocks_local_indexing_cuts(ray_cluster, images, tmp_path):
    """A block recipe on Ray: shards that cut a block read it whole and keep their own tiles,
    so the store is the local one, tile ids included."""
    model = FakeBlockModel()

    def store(path):
        return open_or_create_store(path, model, tile_size=None, stride=None,
                                    max_invalid=None)

    with store(tmp_path / "local.tiles") as local:
        index_images([images], local, model, batch_size=4)
        expected, expected_vecs = _rows(local)
    with store(tmp_path / "ray.tiles") as s:
        index_on_ray([images], s, FakeBlockModel, batch_size=4, workers=2, shard_size=5)
        got, vecs = _rows(s)
    assert got == expected and len(got) > 30
    np.testing.assert_allclose(vecs, expected_vecs, rtol=1e-6, atol=1e-6)


def test_shards_cut_each_image_in_order():
    from tilesearch.records import ImageInfo

    def info(name):
        return ImageInfo(name, 600, 500, 3, "uint8", (1, 2, 3), None, None, "zero", 1, 0.0)

    a, b = tile_grid(600, 500, 256, 128), tile_grid(300, 300, 256, 128)
    shards = make_shards([(info("a"), a), (info("b"), b)], size=5)
    assert [s.number for s in shards] == list(range(len(shards)))
    assert [len(s.windows) for s in shards] == [5, 5, 2, 4]
    assert [w for s in shards[:3] for w in s.windows] == a
    assert {s.info.path for s in shards[3:]} == {"b"}


def test_cluster_mode_and_missing_ray(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not use_cluster("auto") and use_cluster("ray") and not use_cluster("local")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert use_cluster("auto")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError,
                       match=r"pip install '\.\[cluster\]' in a tilesearch checkout"):
        import_ray()


@pytest.mark.slow
def test_api_cluster_ray_with_the_real_model_matches_local(ray_cluster, tmp_path, make_geotiff):
    from tilesearch import api

    img = make_geotiff(tmp_path / "a.tif", 900, 700, crs="EPSG:32633", seed=4)
    local = api.index(img, tmp_path / "local.tiles", cluster="local", recipe="plain")
    on_ray = api.index(img, tmp_path / "ray.tiles", cluster="ray", workers=2, recipe="plain")
    assert on_ray.tiles_added == local.tiles_added == 35  # 7 x 5 windows
    with Store.open(tmp_path / "local.tiles") as a, Store.open(tmp_path / "ray.tiles") as b:
        (rows_a, va), (rows_b, vb) = _rows(a), _rows(b)
    assert rows_a == rows_b
    np.testing.assert_allclose(vb, va, rtol=1e-3, atol=1e-3)
