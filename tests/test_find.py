"""Find all (issue 20, a first cut): a label set's classifier scores every tile, tiles above a
threshold merge into places where they overlap, and the count is the number of places."""

import json

import numpy as np
import pytest
from fakes import run_cli

from tilesearch import api
from tilesearch.detect import detections, fit, score_store
from tilesearch.errors import OptionError, QueryError
from tilesearch.store import LabelSet, Store


def test_overlapping_tiles_are_one_place_and_apart_ones_two(closed_store):
    with Store.open(closed_store) as s:
        scores = np.linspace(0, 1, s.count).astype(np.float32)
        apart = detections(s, np.array([0, 3]), scores)  # cols 0 and 344 of one row
        chain = detections(s, np.array([0, 1, 2, 3]), scores)  # linked by the tiles between
        images = detections(s, np.array([0, 12]), scores)  # two images
    assert len(apart) == 2 and len(chain) == 1 and chain[0].tiles == (0, 1, 2, 3)
    assert len(images) == 2 and images[0].max_score >= images[1].max_score
    assert chain[0].geometry is not None and chain[0].centre is not None


def test_the_classifier_scores_every_tile_as_a_probability(closed_store):
    with Store.open(closed_store) as s:
        clf = fit(s, LabelSet("a", (0, 1), (12, 13)))
        p = score_store(s, clf)
    assert p.shape == (24,) and ((p >= 0) & (p <= 1)).all()
    assert p[[0, 1]].mean() > p[[12, 13]].mean()


def test_find_counts_places_and_never_returns_labelled_tiles(closed_store):
    api.label(closed_store, "a", positives=[0], negatives=[12])
    everything = api.find(closed_store, "a", threshold=0.0)
    members = {t for d in everything.detections for t in d.tiles}
    assert everything.count == 2 and members == set(range(24)) - {0, 12}
    gj = everything.to_geojson()
    assert gj["count"] == 2 and len(gj["features"]) == 2
    strict = api.find(closed_store, "a", threshold=1.0)
    assert strict.count == 0 and strict.tiles == 0


def test_find_refuses_what_it_cannot_answer(closed_store):
    api.label(closed_store, "neg", negatives=[3])
    with pytest.raises(OptionError, match="threshold must be from 0 to 1"):
        api.find(closed_store, "neg", threshold=1.5)
    with pytest.raises(QueryError, match="no label set 'pools'"):
        api.find(closed_store, "pools")
    with pytest.raises(QueryError, match="has no positive tile"):
        api.find(closed_store, "neg")


def test_the_cli_finds_and_writes_geojson(closed_store, capsys, monkeypatch):
    api.label(closed_store, "a", positives=[0, 1], negatives=[12])
    code, out, _ = run_cli(["find", closed_store, "a", "--threshold", 0.0], capsys, monkeypatch)
    assert code == 0 and out.startswith("a: 2 place(s) from 21 tile(s) at or above 0")
    code, out, _ = run_cli(["find", closed_store, "a", "--threshold", 0.0, "--geojson", "-"],
                           capsys, monkeypatch)
    assert json.loads(out)["count"] == 2
    code, _, err = run_cli(["find", closed_store, "a", "--threshold", 2], capsys, monkeypatch)
    assert code == 2 and "Invalid value for '--threshold'" in err


def test_counts_come_with_cross_validated_precision_recall_and_an_interval(closed_store):
    from tilesearch.detect import wilson

    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(8, 10)
    assert 0.5 < lo < 0.8 < hi < 0.95  # 90 % Wilson interval of 8/10
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
