"""Find all (issue 20): a label set's calibrated classifier scores every tile, tiles above a
threshold merge into places where they overlap (in one image or across overlapping images),
and the count comes with the precision and recall the cross-fit measured."""

import json

import numpy as np
import pytest
from fakes import run_cli

from tilesearch import api
from tilesearch.detect import (
    Classifier,
    Fitted,
    detections,
    expected_count,
    fit,
    fit_vectors,
    score_store,
    validation,
    wilson,
)
from tilesearch.errors import OptionError, QueryError
from tilesearch.store import LabelSet, Store


def test_overlapping_tiles_are_one_place_and_apart_ones_two(closed_store):
    with Store.open(closed_store) as s:
        scores = np.linspace(0, 1, s.count).astype(np.float32)
        apart = detections(s, np.array([0, 3]), scores)  # cols 0 and 344 of one row
        chain = detections(s, np.array([0, 1, 2, 3]), scores)  # linked by the tiles between
    assert len(apart) == 2 and apart[0].max_score >= apart[1].max_score
    assert len(chain) == 1 and chain[0].tiles == (0, 1, 2, 3)
    assert chain[0].geometry is not None and chain[0].centre is not None
    # one 256 px tile at 0.5 m is 128 m x 128 m
    assert apart[0].area_m2 == pytest.approx(128 * 128, rel=0.02)


def test_places_merge_across_images_only_where_they_overlap_on_the_ground(
        tmp_path, make_geotiff, build_store):
    from rasterio.transform import from_origin

    a = make_geotiff(tmp_path / "a.tif", 600, 500, crs="EPSG:32633", seed=1)
    b = make_geotiff(tmp_path / "b.tif", 600, 500, crs="EPSG:3857", seed=2)  # same corner
    with Store.open(build_store([a, b]).path) as s:  # a: tiles 0-11, b: 12-23
        scores = np.ones(s.count, np.float32)
        same_ground = detections(s, np.array([0, 12]), scores)
    assert len(same_ground) == 1 and same_ground[0].tiles == (0, 12)
    t = build_store([a]).tile(0)
    far = make_geotiff(tmp_path / "far.tif", 600, 500, crs="EPSG:32633", seed=3,
                       transform=from_origin(t.bounds[0] + 5000, t.bounds[3], 0.5, 0.5))
    with Store.open(build_store([a, far]).path) as s:
        apart = detections(s, np.array([0, 12]), np.ones(s.count, np.float32))
    assert len(apart) == 2


def test_the_classifier_scores_every_tile_as_a_probability(closed_store):
    with Store.open(closed_store) as s:
        fitted = fit(s, LabelSet("a", (0, 1), (12, 13)))
        p = score_store(s, fitted.classifier)
        direct = fitted.classifier.probabilities(s.search_rows(np.arange(s.count)))
    assert p.shape == (24,) and ((p >= 0) & (p <= 1)).all()
    assert p[[0, 1]].mean() > p[[12, 13]].mean()
    np.testing.assert_allclose(p, direct, atol=1e-5)  # stored norms give the same scores


def _two_classes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes in 16 dimensions, a quarter positive."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    x = rng.normal(size=(n, 16)) + np.outer(y, np.r_[1.2, np.zeros(15)]) + 3.0
    return x.astype(np.float32), y


def test_scores_are_calibrated_probabilities():
    x, y = _two_classes(600, seed=1)
    w = np.ones(len(y))
    clf, held, folds = fit_vectors(x, y, w, c=1.0)
    assert folds == 5 and held is not None and held.shape == (600,)
    xt, yt = _two_classes(4000, seed=2)
    p = clf.probabilities(xt)
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - yt[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    assert abs(p.mean() - yt.mean()) < 0.05 and ece < 0.08
    raw, none, k = fit_vectors(x[:3], np.r_[1.0, 0.0, 0.0], np.ones(3))
    assert none is None and k == 0 and isinstance(raw, Classifier)  # too few to cross-fit


def test_validation_reads_precision_and_recall_off_the_held_out_probabilities():
    fitted = Fitted(Classifier(np.zeros(2, np.float32), 0.0), np.arange(6),
                    np.array([1, 1, 1, 0, 0, 0], bool),
                    np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], np.float32), 3)
    v = validation(fitted, 0.5)
    assert v.precision == pytest.approx(2 / 3) and v.recall == pytest.approx(2 / 3)
    assert validation(fitted, 0.95).precision is None  # nothing held out scores that high
    assert validation(fitted, 0.95).recall == 0.0
    count, lo, hi = expected_count(30, v)
    assert count == pytest.approx(30) and lo < count < hi
    assert expected_count(30, validation(fitted, 0.95)) is None
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(8, 10)
    assert 0.5 < lo < 0.8 < hi < 0.95  # 90 % Wilson interval of 8/10


def test_find_counts_places_and_never_returns_labelled_tiles(closed_store):
    api.label(closed_store, "a", positives=[0], negatives=[12])
    everything = api.find(closed_store, "a", threshold=0.0)
    members = {t for d in everything.detections for t in d.tiles}
    assert members == set(range(24)) - {0, 12} and everything.tiles == 22
    assert everything.count == 2  # a's tiles overlap each other, b's too; a and b do not
    gj = everything.to_geojson()
    assert gj["count"] == 2 and len(gj["features"]) == 2
    assert sorted(f["properties"]["n_tiles"] for f in gj["features"]) == [11, 11]
    strict = api.find(closed_store, "a", threshold=1.0)
    assert strict.count == 0 and strict.tiles == 0


def test_find_keeps_to_the_area_and_images_asked(closed_store):
    from tilesearch.retrieval import SearchFilter

    api.label(closed_store, "a", positives=[0], negatives=[12])
    with Store.open(closed_store) as s:
        a_path = s.image_by_id(s.tile(0).image_id)["info"].path
    only_a = api.find(closed_store, "a", threshold=0.0, where=SearchFilter(images=(a_path,)))
    assert {t for d in only_a.detections for t in d.tiles} == set(range(1, 12))


def test_find_refuses_what_it_cannot_answer(closed_store):
    api.label(closed_store, "neg", negatives=[3])
    with pytest.raises(OptionError, match="threshold must be from 0 to 1"):
        api.find(closed_store, "neg", threshold=1.5)
    with pytest.raises(QueryError, match="no label set 'pools'"):
        api.find(closed_store, "pools")
    with pytest.raises(QueryError, match="has no positive tile"):
        api.find(closed_store, "neg")
    api.label(closed_store, "pos", positives=[3])  # positives only: the background stands
    assert api.find(closed_store, "pos", threshold=0.0).tiles == 23  # against them


def test_counts_come_with_cross_validated_precision_recall_and_an_interval(closed_store):
    api.label(closed_store, "a", positives=[0, 1, 2, 3], negatives=[12, 13, 14, 15])
    result = api.find(closed_store, "a", threshold=0.5)
    v = result.validation
    assert v.folds == 4 and v.recall is not None and 0.0 <= v.recall <= 1.0
    assert v.precision == v.recall == 1.0  # the two images' tiles differ in colour
    assert v.recall_interval is not None and 0.5 < v.recall_interval[0] < 1.0
    count, lo, hi = result.expected_count
    assert lo <= count <= hi and count == result.count  # precision and recall both 1
    api.label(closed_store, "one", positives=[0], negatives=[12])
    few = api.find(closed_store, "one", threshold=0.5)
    assert few.validation.folds == 0 and few.expected_count is None


def test_suggestions_are_unlabelled_uncertain_and_spread_out(closed_store):
    from tilesearch.detect import pick_diverse, uncertainty

    x = np.array([[1, 0], [1, 0.01], [0, 1], [1, 1]], np.float32)
    p = np.array([0.5, 0.5, 0.45, 0.99], np.float32)
    assert uncertainty(p)[0] == 1.0 and uncertainty(p)[3] < 0.05
    assert pick_diverse(x, p, 2) == [0, 2]  # row 1 is row 0 again; row 3 is certain
    api.label(closed_store, "a", positives=[0, 1], negatives=[12, 13])
    scored = api.scores(closed_store, "a")
    picks = api.suggestions(closed_store, "a", 4, scored=scored)
    assert len(picks) == len(set(picks)) == 4 and not set(picks) & {0, 1, 12, 13}
    with Store.open(closed_store) as s:
        win = s.windows()[picks]
    for i in range(4):
        for j in range(i + 1, 4):
            a, b = win[i], win[j]
            overlap = (a[0] == b[0] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
                       and a[2] < b[2] + b[4] and b[2] < a[2] + a[4])
            assert not overlap
    with pytest.raises(OptionError, match="whole number from 1"):
        api.suggestions(closed_store, "a", 0)


def test_the_cli_finds_and_writes_geojson(closed_store, capsys, monkeypatch):
    api.label(closed_store, "a", positives=[0, 1], negatives=[12])
    code, out, _ = run_cli(["find", closed_store, "a", "--threshold", 0.0], capsys, monkeypatch)
    assert code == 0 and out.startswith("a: 2 place(s) from 21 tile(s) at or above 0")
    code, out, _ = run_cli(["find", closed_store, "a", "--threshold", 0.0, "--geojson", "-"],
                           capsys, monkeypatch)
    assert json.loads(out)["count"] == 2
    code, _, err = run_cli(["find", closed_store, "a", "--threshold", 2], capsys, monkeypatch)
    assert code == 2 and "Invalid value for '--threshold'" in err


def test_the_cli_suggests_tiles_to_label(closed_store, capsys, monkeypatch):
    api.label(closed_store, "a", positives=[0, 1], negatives=[12, 13])
    code, out, _ = run_cli(["find", closed_store, "a", "--suggest", 3], capsys, monkeypatch)
    assert code == 0 and "label these next (3)" in out
    picked = [int(line.split()[1]) for line in out.splitlines() if line.startswith("  tile ")]
    assert len(picked) == 3 and not set(picked) & {0, 1, 12, 13}


def test_box_overlaps_are_shapelys_intersection_areas():
    import shapely

    from tilesearch.detect.places import _overlap

    rng = np.random.default_rng(0)
    lo = rng.integers(0, 8, (400, 2)).astype(np.float64)
    boxes = np.concatenate([lo, lo + rng.integers(0, 4, (400, 2))], axis=1)  # some flat
    a, b = boxes[:200], boxes[200:]
    touching = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [1, 1, 3, 3]], np.float64)
    beside = np.array([[2, 0, 4, 2], [0.5, 0.5, 1, 1], [5, 5, 6, 6]], np.float64)
    a, b = np.concatenate([a, touching]), np.concatenate([b, beside])
    want = shapely.area(shapely.intersection(shapely.box(*a.T), shapely.box(*b.T)))
    np.testing.assert_allclose(_overlap(a, b), want)
    assert _overlap(touching, beside).tolist() == [0.0, 0.25, 0.0]  # edge, inside, apart
