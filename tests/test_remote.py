"""Images by URL: a range-capable HTTP server on 127.0.0.1 serves GeoTIFFs; `index` reads them
through GDAL's /vsicurl/ as it reads local files (same tiles, same fingerprints), resumes and
skips them, reports a 404 or a non-image in one line without stopping the batch, and the
store's thumbnails read them back. No internet."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel, RangeHandler, run_cli, serve_folder

from tilesearch import api
from tilesearch.outputs import render
from tilesearch.raster import find_images, gdal_path, is_remote, read_list
from tilesearch.store import Store


@pytest.fixture
def served(tmp_path: Path, make_geotiff):
    """(base URL, folder) of a server on 127.0.0.1 over a folder with two GeoTIFFs."""
    folder = tmp_path / "www"
    folder.mkdir()
    make_geotiff(folder / "a.tif", 600, 500, crs="EPSG:32633", seed=1)
    make_geotiff(folder / "b.tif", 520, 400, crs="EPSG:3857", seed=2)
    (folder / "notes.tif").write_text("not an image")
    with serve_folder(folder) as base:
        yield base, folder


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())


def test_gdal_paths() -> None:
    assert gdal_path("https://x.org/a.tif") == "/vsicurl/https://x.org/a.tif"
    assert gdal_path("s3://bucket/k/a.tif") == "/vsis3/bucket/k/a.tif"
    assert gdal_path("gs://b/a.tif") == "/vsigs/b/a.tif"
    assert gdal_path("az://c/a.tif") == "/vsiaz/c/a.tif"
    assert gdal_path("/vsicurl/http://h/a.tif") == "/vsicurl/http://h/a.tif"
    assert is_remote("HTTP://h/a.tif") and not is_remote("/data/a.tif")
    files, errors = find_images(["http://h/a.tif", "http://h/a.tif", "/nope/x.tif"])
    assert files == ["/vsicurl/http://h/a.tif"] and len(errors) == 1  # once, not mangled


def test_index_by_url_matches_indexing_the_file(served, tmp_path, fake_model) -> None:
    base, folder = served
    remote = api.index([f"{base}/a.tif", f"{base}/b.tif"], tmp_path / "url.tiles")
    local = api.index([folder / "a.tif", folder / "b.tif"], tmp_path / "local.tiles")
    assert [p for p, _ in remote.indexed] == [f"/vsicurl/{base}/a.tif", f"/vsicurl/{base}/b.tif"]
    assert [n for _, n in remote.indexed] == [n for _, n in local.indexed]
    with Store.open(tmp_path / "url.tiles") as u, Store.open(tmp_path / "local.tiles") as v:
        np.testing.assert_allclose(np.asarray(u.vectors()), np.asarray(v.vectors()), atol=1e-6)
        a, b = u.tiles([0])[0], v.tiles([0])[0]
        assert a.lonlat == pytest.approx(b.lonlat) and a.source.startswith("/vsicurl/http")
        result = api.search(u, tile=3)
        render.contact_sheet(result, u, tmp_path / "sheet.png")  # reads the tiles by URL
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    again = api.index([f"{base}/a.tif"], tmp_path / "url.tiles")
    assert again.already_done == [f"/vsicurl/{base}/a.tif"] and again.tiles_added == 0


def test_bad_urls_are_reported_in_one_line_and_the_batch_goes_on(served, tmp_path,
                                                                   fake_model) -> None:
    base, _ = served
    report = api.index([f"{base}/missing.tif", f"{base}/notes.tif", f"{base}/a.tif"],
                       tmp_path / "s.tiles")
    failed = dict(report.failed)
    assert set(failed) == {f"/vsicurl/{base}/missing.tif", f"/vsicurl/{base}/notes.tif"}
    assert all("\n" not in r and r.startswith("not a readable image") for r in failed.values())
    assert [n for _, n in report.indexed] and report.tiles_added == 12


def test_the_cli_takes_urls_and_a_list(served, tmp_path, capsys, monkeypatch) -> None:
    base, _ = served
    listing = tmp_path / "images.txt"
    listing.write_text(f"# survey\n{base}/b.tif\n\n")
    assert read_list(listing) == [f"{base}/b.tif"]
    code, out, _ = run_cli(["index", f"{base}/a.tif", "--from-list", listing, "--store",
                            tmp_path / "c.tiles", "-q"], capsys, monkeypatch, fake_model=True)
    assert code == 0 and "indexed 2 image(s)" in out
    code, _, err = run_cli(["index", "--store", tmp_path / "d.tiles"], capsys, monkeypatch)
    assert code == 2 and "--from-list" in err and not (tmp_path / "d.tiles").exists()


def test_the_web_app_maps_and_thumbnails_remote_images(served, tmp_path, fake_model) -> None:
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from tilesearch.web import create_app

    base, _ = served
    api.index([f"{base}/a.tif"], tmp_path / "w.tiles")
    with TestClient(create_app(tmp_path / "w.tiles", warm=False),
                    base_url="http://127.0.0.1:8000") as client:
        images = client.get("/api/images").json()
        assert [i["name"] for i in images] == ["a.tif"]
        for url in ("/api/images/1/tiles/0/0/0.png", "/api/tiles/0/thumbnail.png"):
            r = client.get(url)
            assert r.status_code == 200, (url, r.text)
            assert np.asarray(Image.open(io.BytesIO(r.content))).std() > 0  # real pixels


class Flaky:
    """Makes the server answer 503 to range requests past `cut` bytes while `failing`."""

    def __init__(self, cut: int) -> None:
        self.cut, self.failing = cut, True


def test_a_remote_read_failing_mid_image_keeps_what_was_committed_and_resumes(
        tmp_path, make_geotiff, monkeypatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    folder = tmp_path / "www"
    folder.mkdir()
    image = make_geotiff(folder / "big.tif", 1400, 1200, crs="EPSG:32633", seed=4)
    flaky = Flaky(image.stat().st_size // 2)
    send_head = RangeHandler.send_head

    def failing_head(self):  # type: ignore[no-untyped-def]
        start = re.fullmatch(r"bytes=(\d+)-\d*", self.headers.get("Range", ""))
        if flaky.failing and start and int(start[1]) > flaky.cut:
            self.send_error(503, "busy")
            return None
        return send_head(self)

    monkeypatch.setattr(RangeHandler, "send_head", failing_head)
    store = tmp_path / "s.tiles"
    with serve_folder(folder) as base:
        url = f"{base}/big.tif"
        first = api.index([url], store, batch_size=8)
        (path, reason), = first.failed
        assert path == f"/vsicurl/{url}" and "\n" not in reason
        (_, kept), = first.partial
        assert 0 < kept == first.tiles_added  # committed tiles stay
        flaky.failing = False
        second = api.index([url], store, batch_size=8)
    assert not second.failed and second.indexed
    whole = api.index([image], tmp_path / "local.tiles")
    with Store.open(store) as s:
        assert s.count == whole.tiles_added == kept + second.tiles_added
