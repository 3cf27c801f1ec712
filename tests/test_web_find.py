"""The web app's label sets and find all (issue 20) through an HTTP client, on the fake store
(image 1 = a.tif, tiles 0-11; image 2 = b.tif, tiles 12-23; 5 x 4 cells of 128 px each):
marking and unmarking, kept in the store across apps, find at two thresholds as the Python
API finds, heatmap, suggestions, exports, bad input answered in one line, cross-origin
writes refused."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from PIL import Image

from tilesearch import api
from tilesearch.store.files import write_lock
from tilesearch.web import create_app, finding

POS, NEG = [0, 2, 4], [12, 14, 16]
"""Tiles of a.tif against tiles of b.tif: a classifier that separates some tiles."""
BASE = "http://127.0.0.1:8000"


def app_of(path):
    return create_app(path, warm=False)


@pytest.fixture
def client(closed_store):
    with TestClient(app_of(closed_store), base_url=BASE) as c:
        yield c


@pytest.fixture
def labelled(client):
    r = client.post("/api/labels/pools", json={"positives": POS, "negatives": NEG})
    assert r.status_code == 200, r.text
    return client


def one_line(r, status: int, *words: str) -> None:
    """An error answer: the status, {"error", "detail"} with a one-line detail naming `words`."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "detail"} and "\n" not in body["detail"]
    for w in words:
        assert w in body["detail"], (w, body["detail"])


def test_mark_unmark_and_list(client, closed_store):
    assert client.get("/api/labels").json() == []
    r = client.post("/api/labels/pools", json={"positives": [0, 2], "negatives": [12]})
    body = r.json()
    assert (body["name"], body["positives"], body["negatives"]) == ("pools", [0, 2], [12])
    assert [(t["tile_id"], t["image"]) for t in body["tiles"]] == [(0, "a.tif"), (2, "a.tif"),
                                                                   (12, "b.tif")]
    body = client.post("/api/labels/pools", json={"positives": [12], "unlabel": [2]}).json()
    assert (body["positives"], body["negatives"]) == ([0, 12], [])  # 12 takes its new mark
    assert client.get("/api/labels").json() == [
        {"name": "pools", "positives": [0, 12], "negatives": []}]
    assert client.get("/api/labels/pools").json()["positives"] == [0, 12]
    assert api.label_sets(closed_store)[0].positives == (0, 12)  # in the store itself
    body = client.post("/api/labels/pools", json={"unlabel": [0, 12]}).json()
    assert (body["positives"], body["negatives"], body["tiles"]) == ([], [], [])
    assert client.get("/api/labels").json() == []
    one_line(client.get("/api/labels/pools"), 404, "no label set 'pools'")


def test_marks_persist_across_a_new_app(labelled, closed_store):
    first = labelled.get("/api/labels/pools/find", params={"threshold": 0.3}).json()
    with TestClient(app_of(closed_store), base_url=BASE) as again:
        body = again.get("/api/labels/pools").json()
        assert (body["positives"], body["negatives"]) == (POS, NEG)
        assert again.get("/api/labels").json() == [
            {"name": "pools", "positives": POS, "negatives": NEG}]
        assert again.get("/api/labels/pools/find", params={"threshold": 0.3}).json() == first


def test_remove_a_label_set(labelled):
    assert labelled.delete("/api/labels/pools").json() == {"name": "pools", "removed": 6}
    assert labelled.get("/api/labels").json() == []
    one_line(labelled.delete("/api/labels/pools"), 404, "pools")


def test_find_at_two_thresholds_as_the_python_api_finds(labelled, closed_store):
    low = labelled.get("/api/labels/pools/find", params={"threshold": 0.3, "image": 1}).json()
    high = labelled.get("/api/labels/pools/find", params={"threshold": 0.5, "image": 1}).json()
    scored = api.scores(closed_store, "pools")
    for got, t in ((low, 0.3), (high, 0.5)):
        want = api.find(closed_store, "pools", threshold=t, scored=scored)
        assert (got["threshold"], got["tiles"], got["count"]) == (t, want.tiles, want.count)
        assert got["precision"] == want.validation.precision
        assert got["recall"] == want.validation.recall and got["folds"] == 3
        assert got["recall_interval"] == list(want.validation.recall_interval)
        assert (got["positives"], got["negatives"]) == (3, 3)
        assert got["count"] <= got["tiles"]
    assert low["tiles"] > high["tiles"] > 0 and low["count"] >= high["count"] >= 1
    assert high["expected_count"] is not None
    e, lo, hi = high["expected_count"]
    assert lo <= e <= hi
    outlines = low["outlines"]
    assert outlines["type"] == "FeatureCollection" and "image 1" in outlines["coordinates"]
    for f in outlines["features"]:  # in a.tif's pixels (600 x 500)
        xs, ys = np.array(f["geometry"]["coordinates"][0]).T
        assert xs.min() >= 0 and xs.max() <= 600 and ys.min() >= 0 and ys.max() <= 500
    assert [f["properties"]["rank"] for f in outlines["features"]] == sorted(
        f["properties"]["rank"] for f in outlines["features"])
    assert low["heatmap"] == {"url": "/api/labels/pools/heatmap/1.png?threshold=0.3",
                              "cell": 128, "width": 640, "height": 512}
    lonlat = labelled.get("/api/labels/pools/find", params={"threshold": 0.3}).json()
    assert lonlat["heatmap"] is None and "lon/lat" in lonlat["outlines"]["coordinates"]
    assert len(lonlat["outlines"]["features"]) == low["count"]
    lon, lat = np.array(lonlat["outlines"]["features"][0]["geometry"]["coordinates"][0]).T
    assert 14.9 < lon.min() < 15.1 and 44.9 < lat.min() < 45.1
    two = labelled.get("/api/labels/pools/find", params={"threshold": 0.3, "images": [2]})
    assert two.json()["tiles"] <= low["tiles"]


def test_find_reports_the_audited_count_once_the_audit_is_answered(labelled, closed_store):
    got = api.audit(closed_store, "pools", 3, threshold=0.5)
    before = labelled.get("/api/labels/pools/find", params={"threshold": 0.5}).json()
    assert before["audited_count"] is None and "unanswered" in before["audit_note"]
    api.answer_audit(closed_store, "pools", present=[t.tile_id for t in got.of("found")],
                     absent=[t.tile_id for t in got.of("missed")])
    after = labelled.get("/api/labels/pools/find", params={"threshold": 0.5}).json()
    assert after["audited_count"]["count"] == after["count"] == got.places
    assert after["audit_note"] is None
    other = labelled.get("/api/labels/pools/find", params={"threshold": 0.3}).json()
    assert other["audited_count"] is None and "drawn at threshold 0.5" in other["audit_note"]


def test_new_marks_are_seen_and_refit(labelled):
    before = labelled.get("/api/labels/pools/find").json()
    labelled.post("/api/labels/pools", json={"positives": [6], "negatives": [18]})
    after = labelled.get("/api/labels/pools/find").json()  # the read connection sees them
    assert (before["positives"], after["positives"]) == (3, 4)
    assert after["negatives"] == 4


def test_heatmap_png(labelled):
    r = labelled.get("/api/labels/pools/heatmap/1.png", params={"threshold": 0.5})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (4, 5, 4)  # one pixel per 128 px cell of 600 x 500
    assert (img[..., 3] > 0).all()  # every cell of a.tif is covered by a tile
    assert len(set(img[..., 3].ravel())) <= 2  # above and below the threshold
    one_line(labelled.get("/api/labels/pools/heatmap/9.png"), 404, "image")


def test_suggestions(labelled):
    got = labelled.get("/api/labels/pools/suggestions", params={"n": 3}).json()
    tiles = [s["tile_id"] for s in got["suggestions"]]
    assert got["label_set"] == "pools" and len(tiles) == 3 == len(set(tiles))
    assert not set(tiles) & {*POS, *NEG}
    assert all(0 <= s["probability"] <= 1 and s["image"] for s in got["suggestions"])
    one_line(labelled.get("/api/labels/pools/suggestions", params={"n": 0}), 422, "n")


def test_exports(labelled):
    found = labelled.get("/api/labels/pools/find", params={"threshold": 0.3}).json()
    gj = labelled.get("/api/labels/pools/detections", params={"threshold": 0.3})
    assert gj.status_code == 200 and gj.headers["content-type"] == "application/geo+json"
    assert 'filename="pools-places.geojson"' in gj.headers["content-disposition"]
    data = gj.json()
    assert data["type"] == "FeatureCollection" and data["count"] == found["count"]
    assert len(data["features"]) == found["count"] and data["threshold"] == 0.3
    csv = labelled.get("/api/labels/pools/detections",
                       params={"threshold": 0.3, "format": "csv"})
    lines = csv.text.splitlines()
    assert csv.headers["content-type"].startswith("text/csv")
    assert lines[0].startswith("rank,max_score") and len(lines) == 1 + found["count"]


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "nan", "x"])
def test_thresholds_outside_0_to_1_are_refused(labelled, threshold):
    for url in ("/api/labels/pools/find", "/api/labels/pools/detections"):
        one_line(labelled.get(url, params={"threshold": threshold}), 422, "threshold")


def test_bad_input_answers_one_line(client, closed_store):
    one_line(client.get("/api/labels/nope/find"), 404, "no label set 'nope'")
    one_line(client.get("/api/labels/nope/suggestions"), 404, "nope")
    one_line(client.get("/api/labels/nope/heatmap/1.png"), 404, "nope")
    one_line(client.post("/api/labels/pools", json={"positives": [1, 999]}), 404, "999")
    one_line(client.post("/api/labels/pools", json={"positives": [-1]}), 404, "-1")
    one_line(client.post("/api/labels/pools", json={"positives": [1], "negatives": [1]}),
             400, "both")
    one_line(client.post("/api/labels/pools", json={}), 400, "unmark")
    one_line(client.post("/api/labels/pools", json={"positives": "1"}), 422, "positives")
    one_line(client.post("/api/labels/bad%20name", json={"positives": [1]}), 400, "name")
    one_line(client.get("/api/labels/-x"), 400, "cannot name")
    assert client.get("/api/labels").json() == []  # nothing was written
    client.post("/api/labels/dead", json={"negatives": [3, 4]})
    one_line(client.get("/api/labels/dead/find"), 400, "no positive tile")
    assert str(closed_store) not in client.get("/api/labels/nope/find").text


def test_too_many_tiles_to_merge_asks_for_a_higher_threshold(labelled, monkeypatch):
    monkeypatch.setattr(finding, "MAX_MERGED", 2)
    one_line(labelled.get("/api/labels/pools/find", params={"threshold": 0}), 400,
             "raise the threshold")


def test_another_writer_makes_marks_answer_busy(client, closed_store):
    import os

    fd = write_lock(closed_store)  # as an indexer in another process holds it
    try:
        r = client.post("/api/labels/pools", json={"positives": [1]})
    finally:
        os.close(fd)
    one_line(r, 503, "another process")
    assert r.headers["retry-after"]
    assert client.post("/api/labels/pools", json={"positives": [1]}).status_code == 200


def test_marks_from_several_threads_at_once_all_land(client):
    errors: list[str] = []
    start = threading.Barrier(6)

    def work(tile: int) -> None:
        start.wait()
        r = client.post("/api/labels/many", json={"positives": [tile]})
        if r.status_code != 200:
            errors.append(r.text)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors
    assert client.get("/api/labels/many").json()["positives"] == list(range(6))


@pytest.mark.parametrize("method,url", [
    ("post", "/api/labels/pools"), ("delete", "/api/labels/pools")])
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_cross_origin_label_writes_are_refused(labelled, method, url, headers):
    kw = {"json": {"positives": [5]}} if method == "post" else {}
    r = labelled.request(method.upper(), url, headers=headers, **kw)
    one_line(r, 403, "cross-origin")
    body = labelled.get("/api/labels/pools").json()
    assert (body["positives"], body["negatives"]) == (POS, NEG)  # unchanged
    same = labelled.post("/api/labels/pools", json={"positives": [5]},
                         headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


def test_other_hosts_are_refused(labelled):
    for url in ("/api/labels", "/api/labels/pools/find", "/api/labels/pools/detections"):
        r = labelled.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 421, url


def test_the_routes_are_in_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/labels", "/api/labels/{name}", "/api/labels/{name}/find",
            "/api/labels/{name}/heatmap/{image_id}.png", "/api/labels/{name}/suggestions",
            "/api/labels/{name}/detections", "/api/labels/{name}/audit",
            "/api/labels/{name}/audit/answers"} <= set(paths)
    assert set(paths["/api/labels/{name}/audit"]) == {"get", "post"}
    assert set(paths["/api/labels/{name}"]) == {"get", "post", "delete"}
    assert json.dumps(paths)  # serialisable


def test_audit_drawn_answered_and_counted_through_the_app(client):
    """Drawn, answered and counted over HTTP; labels off the non-overlapping lattice (tiles 0,
    2, 12, 14), so that the audit draws tiles below the threshold too."""
    labelled = client
    labelled.post("/api/labels/pools", json={"positives": [1, 3, 5], "negatives": [13, 15]})
    one_line(labelled.get("/api/labels/pools/audit"), 404, "no audit", "pools")
    drawn = labelled.post("/api/labels/pools/audit", json={"threshold": 0.5, "n": 3}).json()
    assert drawn["label_set"] == "pools" and drawn["threshold"] == 0.5 and drawn["current"]
    tiles = drawn["tiles"]
    assert drawn["unanswered"] == len(tiles) > 0 and all(t["present"] is None for t in tiles)
    assert {t["kind"] for t in tiles} == {"found", "missed"} and all(t["image"] for t in tiles)
    found = [t["tile_id"] for t in tiles if t["kind"] == "found"]
    missed = [t["tile_id"] for t in tiles if t["kind"] == "missed"]
    assert len(found) == min(3, drawn["places"])
    half = labelled.post("/api/labels/pools/audit/answers", json={"present": found[:1]}).json()
    assert half["unanswered"] == len(tiles) - 1
    note = labelled.get("/api/labels/pools/find", params={"threshold": 0.5}).json()
    assert note["audit_note"] == f"{len(tiles) - 1} of {len(tiles)} audit tiles unanswered"
    assert str(client.app.state.store.path) not in note["audit_note"]  # no path, no CLI
    done = labelled.post("/api/labels/pools/audit/answers",
                         json={"present": found, "absent": missed}).json()
    assert done["unanswered"] == 0 and labelled.get("/api/labels/pools/audit").json() == done
    counted = labelled.get("/api/labels/pools/find", params={"threshold": 0.5}).json()
    assert counted["audited_count"]["count"] == counted["count"] == drawn["places"]
    assert counted["audited_count"]["missed_answered"] > 0 and counted["audit_note"] is None
    # a new mark makes the audit stale; bad answers and draws get one-line errors
    labelled.post("/api/labels/pools", json={"negatives": [18]})
    assert labelled.get("/api/labels/pools/audit").json()["current"] is False
    one_line(labelled.post("/api/labels/pools/audit/answers", json={"present": [23]}), 400,
             "tile 23", "not in the audit")
    one_line(labelled.post("/api/labels/pools/audit/answers",
                           json={"present": [found[0]], "absent": [found[0]]}), 400,
             f"tile {found[0]}", "both yes and no")
    one_line(labelled.post("/api/labels/pools/audit", json={"n": 0}), 422, "greater than")
    one_line(labelled.post("/api/labels/pools/audit", json={"n": 101}), 422, "less than")
    one_line(labelled.post("/api/labels/pools/audit", json={"threshold": 2}), 422, "threshold")
    one_line(labelled.post("/api/labels/lakes/audit", json={}), 404, "lakes")
    # with every + unmarked the set cannot be scored, yet its audit is still read and answered
    labelled.post("/api/labels/pools", json={"unlabel": [1, 3, 5]})
    left = labelled.post("/api/labels/pools/audit/answers", json={"absent": missed[:1]})
    assert left.status_code == 200 and left.json()["current"] is False


def test_answers_need_an_audit_and_draws_are_bounded_as_finds(labelled, monkeypatch):
    one_line(labelled.post("/api/labels/pools/audit/answers", json={"present": [1]}), 404,
             "no audit yet", "pools")
    monkeypatch.setattr(finding, "MAX_MERGED", 2)  # as a find at that threshold
    one_line(labelled.post("/api/labels/pools/audit", json={"threshold": 0.0}), 400,
             "raise the threshold")
    one_line(labelled.get("/api/labels/pools/audit"), 404, "no audit yet")  # nothing drawn
