import numpy as np
import pytest
from conftest import write_geotiff, write_png
from fakes import FakeModel

from tilesearch import api
from tilesearch.errors import InputError
from tilesearch.ingest import index_images, open_or_create_store
from tilesearch.models.base import ModelIdentity
from tilesearch.quality import (
    TRANSFORMS,
    labelled_images,
    pairwise_distances,
    retrieval_metrics,
    robustness,
)
from tilesearch.store import Store


def test_metrics_on_a_hand_worked_example():
    labels = ["a", "a", "b", "b"]
    # query 0 ranks 2 (b), 1 (a), 3 (b): AP = 1/2; P@1 = 0
    # query 1 ranks 0 (a) first: AP = 1;  queries 2 and 3 rank each other first: AP = 1
    d = np.array([[0, 2, 1, 3],
                  [1, 0, 2, 3],
                  [3, 3, 0, 1],
                  [3, 3, 1, 0]], dtype=float)
    r = retrieval_metrics(d, labels)
    assert r.overall["mAP"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert r.overall["P@1"] == pytest.approx(3 / 4)
    assert r.per_class["a"]["mAP"] == pytest.approx(0.75)
    assert r.per_class["b"]["P@1"] == 1.0
    assert r.images == 4 and r.classes == 2


def test_perfect_and_random_separation():
    rng = np.random.default_rng(0)
    labels = [c for c in "abc" for _ in range(12)]
    centres = {c: rng.normal(0, 10, 16) for c in "abc"}
    tight = np.stack([centres[c] + rng.normal(0, 0.1, 16) for c in labels])
    assert retrieval_metrics(pairwise_distances(tight), labels).overall["mAP"] == 1.0
    noise = rng.normal(0, 1, (36, 16))
    assert retrieval_metrics(pairwise_distances(noise), labels).overall["mAP"] < 0.6


def test_pairwise_distances_match_brute_force():
    x = np.random.default_rng(1).normal(0, 1, (7, 5))
    brute = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(pairwise_distances(x, "euclidean"), brute, atol=1e-9)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(pairwise_distances(x, "cosine"), 1 - unit @ unit.T, atol=1e-9)


def test_labelled_images(tmp_path):
    for cls in ("forest", "beach"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            write_png(tmp_path / cls / f"{cls}{i}.png", 64, 64, seed=i)
    (tmp_path / "beach" / "notes.txt").write_text("x")
    paths, labels = labelled_images(tmp_path)
    assert labels == ["beach", "beach", "forest", "forest"]
    assert [p.name for p in paths] == ["beach0.png", "beach1.png", "forest0.png", "forest1.png"]
    with pytest.raises(InputError, match="at least two class"):
        labelled_images(tmp_path / "beach")


class StatsModel(FakeModel):
    """Per-channel mean and std only: blind to rotation and flips, not to brightness."""

    identity = ModelIdentity("stats", "s" * 64, 6, "x/255")

    def embed(self, tiles):
        return super().embed(tiles)[:, :6]


@pytest.mark.parametrize("model_cls", [StatsModel, FakeModel])
def test_transform_check_measures_invariance(tmp_path, model_cls):
    images = [write_geotiff(tmp_path / f"i{n}.tif", 700, 600, crs="EPSG:32633", seed=n)
              for n in range(2)]
    model = model_cls()
    with open_or_create_store(tmp_path / f"{model_cls.__name__}.tiles", model, tile_size=None,
                              stride=None, max_invalid=None) as store:
        index_images(images, store, model)
        report = robustness(store, model, samples=12, seed=0)
    assert report.samples == 12
    assert set(report.rank1) == {*TRANSFORMS, "shift32"}
    assert all(0 <= report.rank1[n] <= report.top10[n] <= 1 for n in report.rank1)
    rotations = [report.rank1[n] for n in ("rot90", "rot180", "rot270", "flip_lr", "flip_ud")]
    if model_cls is StatsModel:
        assert rotations == [1.0] * 5  # an invariant fingerprint finds its source every time
    else:
        assert min(rotations) < 1.0  # the 4x4 thumbnail changes when the tile turns


def test_transform_check_on_an_augmented_store_mixes_in_raw_distances(tmp_path):
    """Weight 1 on the raw distance gives the un-augmented store's report; augmentation alone
    gives another."""
    images = [write_geotiff(tmp_path / f"i{n}.tif", 700, 600, crs="EPSG:32633", seed=n)
              for n in range(2)]
    model = FakeModel()
    path = tmp_path / "s.tiles"
    with open_or_create_store(path, model, tile_size=None, stride=None,
                              max_invalid=None) as store:
        index_images(images, store, model)
        plain = robustness(store, model, samples=12, seed=0)
    api.build_index(path, augment=3)
    with Store.open(path) as store:
        augmented = robustness(store, model, samples=12, seed=0)
        mixed = robustness(store, model, samples=12, seed=0, raw_weight=1.0)
    assert mixed.to_dict() == plain.to_dict() != augmented.to_dict()
