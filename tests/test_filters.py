import json

import numpy as np
import pytest

import tilesearch
from tilesearch.errors import InputError, QueryError
from tilesearch.retrieval import SearchFilter, allowed_mask, combine_examples, load_polygon, nearest


def _centres(store):
    return {m.tile_id: m.lonlat for m in store.tiles(range(store.count))}


def test_bbox_filter_keeps_exactly_the_tiles_centred_inside(fake_store):
    centres = _centres(fake_store)
    lons = sorted(c[0] for c in centres.values())
    lats = sorted(c[1] for c in centres.values())
    bbox = (lons[0], lats[0], float(np.median(lons)), float(np.median(lats)))
    mask = allowed_mask(fake_store, SearchFilter(bbox=bbox))
    expected = {i for i, (lon, lat) in centres.items()
                if bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]}
    assert set(np.flatnonzero(mask)) == expected and 0 < len(expected) < fake_store.count
    hits = nearest(fake_store, fake_store.vectors()[0], k=30, allowed=mask,
                   suppress_overlaps=False)
    assert {h.tile.tile_id for h in hits} == expected  # all of them, nothing else


def test_polygon_filter(tmp_path, fake_store):
    centres = _centres(fake_store)
    lon, lat = centres[5]
    ring = [[lon - 1e-6, lat - 1e-6], [lon + 1e-6, lat - 1e-6], [lon + 1e-6, lat + 1e-6],
            [lon - 1e-6, lat + 1e-6], [lon - 1e-6, lat - 1e-6]]
    gj = tmp_path / "area.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                           "coordinates": [ring]}}]}))
    mask = allowed_mask(fake_store, SearchFilter(polygon=load_polygon(gj)))
    assert set(np.flatnonzero(mask)) == {i for i, c in centres.items() if c == (lon, lat)}
    (tmp_path / "line.geojson").write_text(json.dumps(
        {"type": "LineString", "coordinates": ring}))
    with pytest.raises(InputError, match="no Polygon"):
        load_polygon(tmp_path / "line.geojson")


def test_image_filters(fake_store):
    only_b = allowed_mask(fake_store, SearchFilter(images=("b.tif",)))
    assert set(np.flatnonzero(only_b)) == set(range(12, 24))
    not_b = allowed_mask(fake_store, SearchFilter(exclude_images=("b.tif",)))
    assert set(np.flatnonzero(not_b)) == set(range(12))
    with pytest.raises(QueryError, match=r"no indexed image 'c\.tif'"):
        allowed_mask(fake_store, SearchFilter(images=("c.tif",)))
    result = tilesearch.search(fake_store, tile=0, k=5, where=SearchFilter(images=("b.tif",)))
    assert result.hits and all(h.tile.source.endswith("b.tif") for h in result.hits)


def test_combine_examples_moves_toward_positives_and_away_from_negatives():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 16), rng.normal(0, 1, 16)
    pos = np.stack([a + b, a - b])  # share a
    q = combine_examples(pos)
    assert np.dot(q, a) / np.linalg.norm(q) / np.linalg.norm(a) > 0.9
    away = combine_examples(pos, negatives=(a + b)[None], gamma=0.5)
    assert np.dot(away, b) < np.dot(q, b)  # less like the negative's b component
    with pytest.raises(QueryError):
        combine_examples(np.zeros((0, 16)))


def test_search_with_positives_and_negatives(fake_store):
    result = tilesearch.search(fake_store, positives=[1, 14], negatives=[20], k=4)
    assert result.query.description == "2 positive(s), 1 negative(s)"
    examples = fake_store.tiles([1, 14, 20])
    for h in result.hits:
        assert not any(h.tile.image_id == e.image_id and h.tile.window.overlaps(e.window)
                       for e in examples)
    with pytest.raises(QueryError, match="one query"):
        tilesearch.search(fake_store, tile=1, lonlat=(0.0, 0.0))
    with pytest.raises(QueryError, match="negative examples"):
        tilesearch.search(fake_store, lonlat=centres_of(fake_store, 3), negatives=[1])


def centres_of(store, tile_id):
    return store.tile(tile_id).lonlat
