import numpy as np
import pytest

from tilesearch.errors import QueryError
from tilesearch.retrieval import distances, lonlat_query, nearest, tile_query


def _brute(vecs, q, metric):
    if metric == "euclidean":
        return np.sqrt(((vecs - q) ** 2).sum(1))
    return 1 - vecs @ q / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(q))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_search_matches_brute_force(fake_store, metric):
    vecs = np.array(fake_store.vectors(), dtype=np.float64)
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = vecs[rng.integers(len(vecs))] + rng.normal(0, 0.05, vecs.shape[1])
        hits = nearest(fake_store, q.astype(np.float32), k=7, metric=metric,
                       suppress_overlaps=False)
        ref = _brute(vecs, q, metric)
        assert [h.tile.tile_id for h in hits] == list(np.argsort(ref, kind="stable")[:7])
        np.testing.assert_allclose([h.distance for h in hits], np.sort(ref)[:7], atol=1e-4)
        assert [h.rank for h in hits] == list(range(1, 8))


def test_query_excludes_itself_and_hits_are_distinct_places(fake_store):
    q = tile_query(fake_store, 5)
    raw = nearest(fake_store, q.vector, k=3, exclude=None, suppress_overlaps=False)
    assert raw[0].tile.tile_id == 5 and raw[0].distance == pytest.approx(0, abs=1e-3)
    hits = nearest(fake_store, q.vector, k=8, exclude=q.tile)
    ids = [h.tile.tile_id for h in hits]
    assert 5 not in ids
    for h in hits:
        assert not (h.tile.image_id == q.tile.image_id and h.tile.window.overlaps(q.tile.window))
    for i, a in enumerate(hits):
        for b in hits[i + 1:]:
            same_image = a.tile.image_id == b.tile.image_id
            assert not (same_image and a.tile.window.overlaps(b.tile.window))
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_fewer_hits_when_distinct_places_run_out(fake_store):
    hits = nearest(fake_store, fake_store.vectors()[0], k=50)
    assert 0 < len(hits) < 24


def test_lonlat_query_picks_the_tile_with_the_nearest_centre(fake_store):
    target = fake_store.tile(17)
    lon, lat = target.lonlat
    q = lonlat_query(fake_store, lon + 1e-7, lat - 1e-7)
    assert q.tile.tile_id == 17 and "tile 17" in q.description
    with pytest.raises(QueryError, match="no indexed tile covers"):
        lonlat_query(fake_store, -100.0, 10.0)


def test_bad_queries(fake_store):
    with pytest.raises(QueryError, match="no tile 99"):
        tile_query(fake_store, 99)
    with pytest.raises(QueryError, match="unknown metric"):
        distances(fake_store, fake_store.vectors()[0], "manhattan")
    with pytest.raises(QueryError, match="query fingerprint has 3 values"):
        distances(fake_store, np.zeros(3, np.float32))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_query_expansion_matches_the_evaluation_path(fake_store, metric):
    from tilesearch.quality import expanded_distances

    vecs = np.array(fake_store.vectors(), dtype=np.float64)
    full = expanded_distances(vecs, metric, expand=4, alpha=3.0)
    for qid in (0, 7, 19):
        hits = nearest(fake_store, fake_store.vectors()[qid], k=6, metric=metric,
                       suppress_overlaps=False, expand=4)
        expected = np.argsort(full[qid], kind="stable")[:6]
        assert [h.tile.tile_id for h in hits] == list(expected)
        dist = np.sqrt(full[qid][expected]) if metric == "euclidean" else full[qid][expected]
        np.testing.assert_allclose([h.distance for h in hits], dist, atol=1e-4)
    plain = nearest(fake_store, fake_store.vectors()[0], k=6, suppress_overlaps=False)
    expanded = nearest(fake_store, fake_store.vectors()[0], k=6, suppress_overlaps=False,
                       expand=4)
    assert [h.distance for h in plain] != [h.distance for h in expanded]


def test_suppression_is_greedy_and_complete_for_large_k(fake_store):
    q = tile_query(fake_store, 2)
    hits = nearest(fake_store, q.vector, k=1000, exclude=q.tile)
    kept = [h.tile for h in hits]
    d = distances(fake_store, q.vector)
    by_rank = np.argsort(d, kind="stable")
    # every tile ranked before the last hit is a hit, or overlaps the query or an earlier hit
    for tile_id in by_rank[: int(np.searchsorted(np.sort(d), hits[-1].distance, "right"))]:
        meta = fake_store.tile(int(tile_id))
        if tile_id in {t.tile_id for t in kept}:
            continue
        earlier = [t for t in kept if d[t.tile_id] <= d[tile_id]] + [q.tile]
        assert any(meta.image_id == t.image_id and meta.window.overlaps(t.window)
                   for t in earlier), tile_id
    # and nothing after it was left out that overlaps nothing kept (k was not the limit)
    for meta in fake_store.tiles(range(fake_store.count)):
        assert meta.tile_id in {t.tile_id for t in kept} or any(
            meta.image_id == t.image_id and meta.window.overlaps(t.window)
            for t in [*kept, q.tile])


def test_an_image_query_from_a_file_from_pixels_or_prepared_ranks_alike(tmp_path):
    from conftest import write_geotiff
    from fakes import FakeModel
    from PIL import Image

    from tilesearch import api
    from tilesearch.ingest import index_images
    from tilesearch.store import Store

    a = write_geotiff(tmp_path / "a.tif", 700, 600, crs="EPSG:32633", seed=7)
    model = FakeModel()
    with Store.create(tmp_path / "s.tiles", FakeModel.identity) as s:
        index_images([a], s, model)
        pixels = np.asarray(Image.open(a).convert("RGB"))[100:500, 150:550]
        Image.fromarray(pixels).save(tmp_path / "q.png")
        by_file = api.search(s, image=tmp_path / "q.png", model=model, k=5)
        by_pixels = api.search(s, image=pixels, model=model, k=5)
        prepared = api.image_query(s, pixels, model=model)
        by_query = api.search(s, image=prepared, k=5)
    ids = [[h.tile.tile_id for h in r.hits] for r in (by_file, by_pixels, by_query)]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) >= 3  # distinct places of 20 tiles
    np.testing.assert_allclose(by_file.query.vector, prepared.vector, atol=0.02)
    with pytest.raises(QueryError, match="RGB uint8"):
        api.search(tmp_path / "s.tiles", image=pixels[..., 0], model=model)


def test_labelled_tiles_never_come_back_as_hits(fake_store):
    """`--tile 0 -p 11 -n 12`: the query tile and the examples are known places (issue 20's
    bug: the query tile came back at rank 1)."""
    from tilesearch import api

    result = api.search(fake_store, tile=0, positives=[11], negatives=[12], k=20,
                        suppress_overlaps=False)
    assert result.hits and not {h.tile.tile_id for h in result.hits} & {0, 11, 12}
    kept = api.search(fake_store, tile=0, positives=[11], k=24, exclude_self=False,
                      suppress_overlaps=False)
    assert {0, 11} <= {h.tile.tile_id for h in kept.hits}
