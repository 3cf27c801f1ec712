"""The web app answers only for its own host names (no DNS rebinding), refuses cross-origin
state-changing requests, and keeps the server's file paths out of its answers (issue 18)."""

from __future__ import annotations

import csv
import io
import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from test_web_api import png_bytes

from tilesearch import api
from tilesearch.errors import StoreError
from tilesearch.outputs import export
from tilesearch.web import create_app
from tilesearch.web.guard import allowed_hosts, host_name, is_loopback
from tilesearch.web.paths import hide_paths

SEARCH = {"tile": 3, "k": 3}


@pytest.fixture
def app(fake_store):
    fake_store.close()
    return create_app(fake_store.path, warm=False)


def local(app, base="http://127.0.0.1:8000"):
    return TestClient(app, base_url=base)


@pytest.mark.parametrize("base", ["http://127.0.0.1:8000", "http://localhost:1234",
                                  "http://[::1]:8000", "http://LOCALHOST", "http://127.0.0.1"])
def test_loopback_host_names_are_served(app, base):
    with local(app, base) as c:
        assert c.get("/api/info").status_code == 200
        assert c.post("/api/search", json=SEARCH).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "testserver", "", "[::2]:80", "localhost.:8000"])
def test_other_host_names_are_refused(app, host):
    with local(app) as c:
        for r in (c.get("/api/info", headers={"Host": host}),
                  c.get("/api/images/1/tiles/0/0/0.png", headers={"Host": host}),
                  c.post("/api/search?format=csv", json=SEARCH, headers={"Host": host})):
            assert r.status_code == 421, (host, r.status_code)
            assert r.json()["error"] == "misdirected request"
            assert "store" not in r.text and "tif" not in r.text


def test_the_host_the_server_was_started_for_is_served(fake_store):
    fake_store.close()
    app = create_app(fake_store.path, warm=False, host="survey.lan")
    with TestClient(app, base_url="http://survey.lan:8000") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"Host": "other.lan:8000"}).status_code == 421
    with TestClient(create_app(fake_store.path, warm=False, allowed_hosts=["testserver"])) as c:
        assert c.get("/api/info").status_code == 200  # the TestClient's own name, when asked


def test_allowed_host_names():
    assert {"127.0.0.1", "localhost", "::1"} <= allowed_hosts("127.0.0.1")
    assert "10.1.2.3" in allowed_hosts("10.1.2.3") and "x" in allowed_hosts("::1", ["X"])
    import socket

    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")
    assert host_name("[::1]:8000") == "::1" and host_name("A.b:80") == "a.b"
    assert host_name("::1") == "::1" and host_name("[::1") == ""
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:9999"},  # another server on this machine
    {"Origin": "null"},
    {"Origin": "file://"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "cross-site"},
])
def test_cross_origin_posts_are_refused(app, headers):
    with local(app) as c:
        r = c.post("/api/search", json=SEARCH, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
        up = c.post("/api/search/image", files={"file": ("q.png", png_bytes())},
                    headers=headers)
        assert up.status_code == 403
        assert c.get("/api/info", headers=headers).status_code == 200  # reads: the browser
        # keeps them from the other page (no CORS headers)


@pytest.mark.parametrize("headers", [
    {}, {"Origin": "http://127.0.0.1:8000"}, {"Sec-Fetch-Site": "same-origin"},
    {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
])
def test_same_origin_and_script_posts_are_served(app, headers):
    with local(app) as c:
        assert c.post("/api/search", json=SEARCH, headers=headers).status_code == 200
    assert "access-control-allow-origin" not in c.get("/api/info").headers


def test_answers_name_files_without_their_folders(fake_store, tmp_path):
    fake_store.record_failure(str(tmp_path / "secret" / "broken.tif"),
                              f"cannot read {tmp_path}/x")
    fake_store.close()
    app = create_app(fake_store.path, warm=False)
    with local(app) as c:
        facts = c.get("/api/info").json()
        assert facts["store"] == "store"
        assert facts["failures"] == [{"path": "broken.tif", "reason": "cannot read x"}]
        gj = c.post("/api/search?format=geojson", json=SEARCH).json()
        csv_text = c.post("/api/search?format=csv", json=SEARCH).text
        everything = json.dumps(facts) + json.dumps(gj) + csv_text
        assert str(tmp_path) not in everything and "/tmp" not in everything
        assert gj["store"] == "store"
        assert {f["properties"]["source"] for f in gj["features"]} <= {"a.tif", "b.tif"}
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        assert rows and {r["source"] for r in rows} <= {"a.tif", "b.tif"}


def test_paths_are_exposed_when_asked(fake_store):
    fake_store.close()
    with local(create_app(fake_store.path, warm=False, expose_paths=True)) as c:
        assert c.get("/api/info").json()["store"] == str(fake_store.path)
        gj = c.post("/api/search?format=geojson", json=SEARCH).json()
        assert gj["features"][0]["properties"]["source"].startswith("/")


def test_error_details_name_files_without_their_folders(app, fake_store, monkeypatch):
    def broken(*a, **kw):
        raise StoreError(f"{fake_store.path}/vectors.f32 is damaged")

    monkeypatch.setattr(api, "search", broken)
    with local(app) as c:
        r = c.post("/api/search", json=SEARCH)
    assert r.status_code == 500 and r.json()["detail"] == "vectors.f32 is damaged"
    assert hide_paths("see https://example.org/a/b and /srv/x/y.tif") == (
        "see https://example.org/a/b and y.tif")


def test_exports_name_files_by_name_when_asked(fake_store):
    result = api.search(fake_store, tile=3, k=3)
    rows = list(csv.DictReader(io.StringIO(export.to_csv(result, paths=False))))
    assert {r["source"] for r in rows} <= {"a.tif", "b.tif"}
    full = list(csv.DictReader(io.StringIO(export.to_csv(result))))
    assert all(r["source"].startswith("/") for r in full)  # the CLI's default
    gj = export.to_geojson(result, fake_store, paths=False)
    assert gj["store"] == "store" and "/" not in json.dumps(
        [f["properties"]["source"] for f in gj["features"]])
    assert export.to_geojson(result, fake_store)["store"] == str(fake_store.path)


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("192.168.1.5", True),
                                               ("127.0.0.1", False), ("localhost", False)])
def test_serving_beyond_this_machine_warns_loudly(fake_store, monkeypatch, capsys, host, warned):
    import uvicorn

    from tilesearch.web import serve

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    fake_store.close()
    serve(fake_store.path, host=host, warm=False)
    err = capsys.readouterr().err
    assert ("WARNING" in err and host in err) is warned
    assert seen["host"] == host and seen["timeout_keep_alive"] > 0
    assert seen["limit_concurrency"] > 0 and seen["h11_max_incomplete_event_size"] > 0
