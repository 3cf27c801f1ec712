import dataclasses

import numpy as np
import pytest
from conftest import FAKE_IDENTITY

from tilesearch.errors import ModelMismatchError, StoreError
from tilesearch.models.base import ModelIdentity
from tilesearch.store import Store
from tilesearch.tiling import Window


def test_roundtrip_vectors_norms_and_metadata(fake_store):
    path, n = fake_store.path, fake_store.count
    vecs = np.array(fake_store.vectors())
    fake_store.close()
    with Store.open(path) as s:
        assert s.count == n == 24
        np.testing.assert_array_equal(s.vectors(), vecs)
        np.testing.assert_allclose(s.sq_norms(), (vecs**2).sum(1), rtol=1e-5)
        metas = s.tiles([13, 2])
        assert [m.tile_id for m in metas] == [13, 2]
        assert metas[0].source.endswith("b.tif") and metas[1].source.endswith("a.tif")
        assert metas[0].crs == "EPSG:3857" and metas[1].crs == "EPSG:32633"
        assert [i["status"] for i in s.images()] == ["done", "done"]
        with pytest.raises(StoreError, match="no tile with id 99"):
            s.tile(99)


def test_uncommitted_vectors_are_truncated_on_open(fake_store):
    path, n, dim = fake_store.path, fake_store.count, fake_store.dim
    fake_store.close()
    with open(path / "vectors.f32", "ab") as f:  # a crash after writing, before committing
        f.write(np.ones((3, dim), np.float32).tobytes())
    with Store.open(path) as s:  # read-only: ignores the tail
        assert s.vectors().shape == (n, dim)
    with Store.open(path, writable=True) as s:  # recovered only when it writes
        assert (path / "vectors.f32").stat().st_size == (n + 3) * dim * 4
        moved = dataclasses.replace(s.tile(0), window=Window(9999, 9999, 256, 256))
        s.append(1, [moved], np.zeros((1, dim), np.float32))
        assert (path / "vectors.f32").stat().st_size == (n + 1) * dim * 4
        np.testing.assert_array_equal(s.vectors()[n], 0)


def test_missing_vectors_are_reported_as_damage(fake_store):
    path = fake_store.path
    fake_store.close()
    with open(path / "vectors.f32", "r+b") as f:
        f.truncate(100)
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path, writable=True)


def test_model_identity_is_enforced(fake_store):
    fake_store.check_model(FAKE_IDENTITY)
    other = ModelIdentity("resnet18", "a" * 64, 512, "imagenet")
    with pytest.raises(ModelMismatchError, match=r"holds fake fingerprints.*not resnet18"):
        fake_store.check_model(other)
    with pytest.raises(StoreError, match="expected fingerprints of shape"):
        fake_store.append(1, fake_store.tiles([0]), np.zeros((1, 512), np.float32))


def test_not_a_store_and_second_writer(tmp_path, fake_store):
    with pytest.raises(StoreError, match="no such store"):
        Store.open(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a tilesearch store"):
        Store.open(tmp_path / "plain")
    with pytest.raises(StoreError, match="another process is writing"):
        Store.open(fake_store.path, writable=True)
    with pytest.raises(StoreError, match="not empty"):
        Store.create(fake_store.path, FAKE_IDENTITY)


def test_spatial_lookups(fake_store):
    t = fake_store.tile(4)
    lon, lat = t.lonlat
    near = fake_store.tiles_near(lon, lat)
    assert 4 in [m.tile_id for m in near]
    assert all(m.lonlat_bounds[0] <= lon <= m.lonlat_bounds[2] for m in near)
    ids, lon, lat = fake_store.tiles_in_bbox(t.lonlat_bounds)
    assert {m.tile_id for m in near} <= set(ids.tolist())
    assert dict(zip(ids.tolist(), zip(lon, lat, strict=True), strict=True))[4] == t.lonlat
    assert fake_store.tile_at(t.image_id, t.window).tile_id == 4


def test_another_recipe_is_refused(fake_store):
    other = ModelIdentity(FAKE_IDENTITY.name, FAKE_IDENTITY.weights_sha256, FAKE_IDENTITY.dim,
                          FAKE_IDENTITY.normalisation, recipe="d4-128")
    with pytest.raises(ModelMismatchError, match=r"recipe plain.*not fake \(recipe d4-128"):
        fake_store.check_model(other)
    assert ModelIdentity.from_dict({**FAKE_IDENTITY.to_dict(), "recipe": "d4-128"}) == other
    legacy = FAKE_IDENTITY.to_dict()
    del legacy["recipe"]
    assert ModelIdentity.from_dict(legacy).recipe == "plain"
