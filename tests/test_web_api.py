"""The web app's JSON API through an HTTP client, on a store of synthetic GeoTIFFs with fake
fingerprints (image 1 = a.tif, EPSG:32633, tiles 0-11; image 2 = b.tif, EPSG:3857, 12-23)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import index_images
from fakes import FakeModel
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from tilesearch import api
from tilesearch.tiling import Window
from tilesearch.web import create_app


@pytest.fixture
def client(fake_store):
    """A client of the app on `fake_store`, which answers for the TestClient's host name."""
    fake_store.close()
    with TestClient(create_app(fake_store.path, max_upload=200_000,
                               allowed_hosts=["testserver"])) as c:
        yield c


def png_bytes(size=(64, 48), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_info_and_images(client):
    facts = client.get("/api/info").json()
    assert facts["tiles"] == 24 and facts["images"] == 2
    imgs = client.get("/api/images").json()
    assert [(i["id"], i["name"], i["tiles"]) for i in imgs] == [(1, "a.tif", 12), (2, "b.tif", 12)]
    assert imgs[0]["max_zoom"] == 2 and imgs[0]["georeferenced"]


def test_search_by_tile_matches_the_python_api(client, fake_store):
    got = client.post("/api/search", json={"tile": 3, "k": 5})
    assert got.status_code == 200
    body = got.json()
    want = api.search(fake_store.path, tile=3, k=5)
    assert [h["tile_id"] for h in body["results"]] == [h.tile.tile_id for h in want.hits]
    assert [h["rank"] for h in body["results"]] == list(range(1, len(want.hits) + 1))
    assert len(want.hits) >= 3
    assert body["query_tile"]["tile_id"] == 3 and body["results"][0]["image"] in ("a.tif", "b.tif")


def test_positives_negatives_and_image_filter(client, fake_store):
    body = client.post("/api/search", json={"tile": 3, "positives": [15], "negatives": [7],
                                            "k": 4, "images": [2]}).json()
    want = api.search(fake_store.path, tile=3, positives=[15], negatives=[7], k=4,
                      where=api.SearchFilter(images=("b.tif",)))
    assert [h["tile_id"] for h in body["results"]] == [h.tile.tile_id for h in want.hits]
    assert all(h["image_id"] == 2 for h in body["results"])


def test_visible_area_filter_keeps_tiles_centred_inside(client):
    view = {"image": 1, "col_off": 0, "row_off": 0, "width": 300, "height": 300}
    body = client.post("/api/search", json={"tile": 20, "k": 10, "visible": view}).json()
    assert body["results"]
    for h in body["results"]:
        w = h["window"]
        assert h["image_id"] == 1
        assert w["col_off"] + w["width"] / 2 <= 301 and w["row_off"] + w["height"] / 2 <= 301


def test_exports_geojson_and_csv(client):
    gj = client.post("/api/search?format=geojson", json={"tile": 3, "k": 3})
    assert gj.status_code == 200 and "attachment" in gj.headers["content-disposition"]
    feats = gj.json()["features"]
    assert [f["properties"]["role"] for f in feats] == ["query", "hit", "hit", "hit"]
    csv = client.post("/api/search?format=csv", json={"tile": 3, "k": 3})
    assert csv.text.splitlines()[0].startswith("rank,tile_id") and len(csv.text.splitlines()) == 4


def test_tile_at_pixel_picks_the_nearest_centre(client):
    t = client.get("/api/images/1/tile-at", params={"col": 140, "row": 130}).json()
    assert t["image_id"] == 1 and t["window"]["col_off"] == 0 and t["window"]["row_off"] == 0
    t = client.get("/api/images/2/tile-at", params={"col": 599, "row": 499}).json()
    assert t["window"] == {"col_off": 344, "row_off": 244, "width": 256, "height": 256}
    out = client.get("/api/images/1/tile-at", params={"col": 700, "row": 10})
    assert out.status_code == 400 and "outside the image" in out.json()["detail"]


def test_map_tiles_are_png_and_cached(client):
    r = client.get("/api/images/1/tiles/2/2/1.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (256, 256) and img.mode == "RGBA"
    alpha = np.asarray(img)[..., 3]
    # the image is 600 x 500 px: this tile holds its last 88 columns and 244 rows
    assert alpha[:244, :88].all() and not alpha[:, 88:].any() and not alpha[244:].any()
    assert "immutable" in r.headers["cache-control"]
    again = client.get("/api/images/1/tiles/2/2/1.png",
                       headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    low = Image.open(io.BytesIO(client.get("/api/images/1/tiles/0/0/0.png").content))
    assert np.asarray(low)[:125, :150, 3].any() and not np.asarray(low)[130:, :, 3].any()


def test_map_tile_matches_a_direct_read(client, tmp_path):
    from tilesearch.raster import open_image

    tile = np.asarray(Image.open(io.BytesIO(client.get("/api/images/2/tiles/2/1/0.png").content)))
    with open_image(tmp_path / "b.tif") as src:
        pixels, _ = src.read_block(Window(256, 0, 256, 256))
    assert np.abs(tile[..., :3].astype(int) - pixels.astype(int)).max() <= 1


def test_thumbnail(client):
    r = client.get("/api/tiles/5/thumbnail.png?size=64")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (64, 64)
    assert r.headers["etag"] and "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize("url", [
    "/api/images/9/tiles/0/0/0.png", "/api/images/1/tiles/3/0/0.png",
    "/api/images/1/tiles/0/5/0.png", "/api/tiles/99", "/api/tiles/99/thumbnail.png",
    "/api/images/..%2F..%2Fetc%2Fpasswd/tiles/0/0/0.png", "/static/../pyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2F..%2F..%2Fpyproject.toml",
    "/api/images/1/tiles/0/0/..%2F..%2Fx.png", "/static//etc/passwd",
])
def test_requests_never_reach_other_files(client, url):
    r = client.get(url)
    assert r.status_code in (404, 422), (url, r.status_code)
    assert "pyproject" not in r.text and "root:" not in r.text
    if r.headers["content-type"].startswith("application/json"):
        assert set(r.json()) == {"error", "detail"}


def test_errors_are_json_with_status(client):
    r = client.post("/api/search", json={"tile": 999})
    assert r.status_code == 404 and r.json()["error"] == "not found" and "999" in r.json()["detail"]
    r = client.post("/api/search", json={"k": 5})
    assert r.status_code == 400 and "give one query" in r.json()["detail"]
    r = client.post("/api/search", json={"tile": 1, "k": 0})
    assert r.status_code == 422 and "k" in r.json()["detail"]
    r = client.post("/api/search", json={"tile": 1, "images": [7]})
    assert r.status_code == 404 and "image" in r.json()["detail"]


def test_index_page_and_static_files_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "tilesearch" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for src in ("/static/vendor/leaflet/leaflet.js", "/static/app.js", "/static/app.css"):
        assert client.get(src).status_code == 200, src
    assert client.get("/openapi.json").json()["paths"]["/api/search"]


def test_upload_limits_and_validation(client):
    big = client.post("/api/search/image", files={"file": ("big.png", b"x" * 200_001)})
    assert big.status_code == 413 and big.json()["error"] == "upload too large"
    bad = client.post("/api/search/image", files={"file": ("a.png", b"not an image at all")})
    assert bad.status_code == 422 and "a.png" in bad.json()["detail"]
    r = client.post("/api/search/image", files={"file": ("q.png", png_bytes())},
                    data={"params": json.dumps({"k": 0})})
    assert r.status_code == 400


def test_upload_search_uses_the_store_model_loaded_once(client, monkeypatch, tmp_path,
                                                        make_geotiff, build_store):
    store = build_store([make_geotiff(tmp_path / "c.tif", 600, 500, crs="EPSG:32633", seed=3)],
                        path=tmp_path / "fm", dim=22)
    loads, models = [], []

    def fake_fp(s, weights=None, runtime="auto"):
        loads.append(s.path)
        model = FakeModel()
        model.identity = s.identity
        models.append(model)
        return model

    monkeypatch.setattr(api, "store_fingerprinter", fake_fp)
    store.close()
    with TestClient(create_app(store.path, allowed_hosts=["testserver"])) as c:
        assert not loads  # nothing loaded before the first upload
        bodies = []
        for seed in (0, 1):
            r = c.post("/api/search/image",
                       files={"file": ("roof.png", png_bytes((300, 200), seed=seed))},
                       data={"params": json.dumps({"k": 3})})
            assert r.status_code == 200, r.text
            bodies.append(r.json())
    assert len(loads) == 1 and models[0].calls == 2  # one model, used by both uploads
    body = bodies[0]
    assert body["query"] == "image roof.png" and 1 <= len(body["results"]) <= 3
    dists = [h["distance"] for h in body["results"]]
    assert dists == sorted(dists) and body["results"][0]["image"] == "c.tif"


def test_search_uses_a_given_model_and_checks_it(tmp_path, make_geotiff, build_store,
                                                 monkeypatch):
    from tilesearch.errors import ModelMismatchError

    store = build_store([make_geotiff(tmp_path / "c.tif", 600, 500, crs="EPSG:32633", seed=3)],
                        path=tmp_path / "fm", dim=22)
    monkeypatch.setattr(api, "store_fingerprinter", lambda *a: pytest.fail("model loaded"))
    query = tmp_path / "q.png"
    query.write_bytes(png_bytes((300, 200)))
    model = FakeModel()
    model.identity = store.identity
    result = api.search(store, image=query, k=3, model=model)
    assert model.calls == 1 and result.hits
    with pytest.raises(ModelMismatchError):
        api.search(store, image=query, k=3, model=FakeModel())  # another model's identity


def test_a_tile_with_negatives_only_weighs_the_negatives(client, fake_store):
    body = client.post("/api/search", json={"tile": 3, "negatives": [4], "k": 4}).json()
    want = api.search(fake_store.path, positives=[3], negatives=[4], k=4)
    assert want.hits == api.search(fake_store.path, tile=3, negatives=[4], k=4).hits
    assert body["query"] == "1 positive(s), 1 negative(s)"
    assert [h["tile_id"] for h in body["results"]] == [h.tile.tile_id for h in want.hits]


def test_images_indexed_after_start_are_served(client, fake_store, make_geotiff):
    from tilesearch.store import Store

    assert len(client.get("/api/images").json()) == 2
    assert client.get("/api/images/3/tiles/0/0/0.png").status_code == 404
    c = make_geotiff(fake_store.path.parent / "c.tif", 600, 500, crs="EPSG:32633", seed=7)
    with Store.open(fake_store.path, writable=True) as s:
        new = index_images(s, [c], seed=5)
    assert new == list(range(24, 24 + len(new))) and new
    imgs = client.get("/api/images").json()
    assert [(i["id"], i["name"], i["tiles"]) for i in imgs][-1] == (3, "c.tif", len(new))
    facts = client.get("/api/info").json()
    assert facts["tiles"] == 24 + len(new) and facts["images"] == 3
    assert [i["name"] for i in facts["images_list"]] == ["a.tif", "b.tif", "c.tif"]
    assert client.get("/api/images/3/tiles/0/0/0.png").status_code == 200
    assert client.get(f"/api/tiles/{new[-1]}").json()["image"] == "c.tif"
    body = client.post("/api/search", json={"tile": new[0], "k": 30}).json()
    assert body["query_tile"]["image"] == "c.tif"
    assert {h["image"] for h in body["results"]} == {"a.tif", "b.tif", "c.tif"}


def test_serve_command_starts_uvicorn_with_the_store(monkeypatch, fake_store, capsys):
    import sys

    import uvicorn

    from tilesearch.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(sys, "argv", ["tilesearch", "serve", str(fake_store.path), "--port",
                                      "8765"])
    main()
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765
    assert seen["app"].state.store.count == 24 and seen["app"].state.store.warmer is not None
    assert "http://127.0.0.1:8765/" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["tilesearch", "serve", str(fake_store.path), "--no-warm"])
    main()
    assert seen["app"].state.store.warmer is None


def test_worker_processes_build_the_app_from_the_environment(fake_store, monkeypatch):
    from tilesearch.web.server import STORE_ENV, app_from_env

    fake_store.close()
    monkeypatch.setenv(STORE_ENV, str(fake_store.path))
    with TestClient(app_from_env(), base_url="http://127.0.0.1") as c:
        assert c.get("/api/info").json()["tiles"] == 24


def test_the_app_warms_its_store_unless_told_not_to(fake_store):
    fake_store.close()
    app = create_app(fake_store.path)
    warmer = app.state.store.warmer
    assert warmer.join(30) and warmer.read_bytes > 0
    with TestClient(app, base_url="http://localhost") as c:
        facts = c.get("/api/info").json()["warm"]
    assert facts == {"running": False, "read_bytes": warmer.read_bytes, "skipped": [],
                     "warmed": ["meta.sqlite", "norms.f32", "vectors.f32"]}
    cold = create_app(fake_store.path, warm=False)
    assert cold.state.store.warmer is None
    with TestClient(cold, base_url="http://localhost") as c:
        assert c.get("/api/info").json()["warm"] is None
