"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): open the page on
a small store, click a point, see k results, mark one negative, search again, download the
GeoJSON; on synthetic images and on crops of the real orthomosaics indexed with the real model.
The API page (/docs) renders its operations too; no request may leave the server in either.
Screenshots are saved to tests/artifacts/web-e2e-{synthetic,real}.png."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
K = 6

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH "
                                 "(Debian: apt-get install chromium)")]


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)


def browser_of(p):
    """Headless Debian Chromium, driven by Playwright."""
    return p.chromium.launch(executable_path=CHROMIUM, headless=True,
                             args=["--no-sandbox", "--disable-gpu"])


def watched_page(browser, server: str):
    """A 1280 x 800 page that accepts downloads, and the list of URLs it requested from
    anywhere but `server` (blob: and data: URLs aside)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith((server, "blob:", "data:")) else None)
    return page, outside


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def real_crops(folder: Path, orthos: Path, size: int = 1024) -> list[Path]:
    """A size x size crop from the middle of each real orthomosaic, as GeoTIFFs."""
    import rasterio
    from rasterio.windows import Window

    out = []
    for src_path in sorted(orthos.glob("*.tif")):
        with rasterio.open(src_path) as src:
            win = Window((src.width - size) // 2, (src.height - size) // 2, size, size)
            profile = src.profile | {"width": size, "height": size,
                                     "transform": src.window_transform(win), "driver": "GTiff",
                                     "tiled": True, "blockxsize": 256, "blockysize": 256,
                                     "compress": "deflate"}
            profile.pop("photometric", None)
            data = src.read(window=win)
            mask = src.dataset_mask(window=win)
        dst_path = folder / src_path.name
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            if src.count == 3:
                dst.write_mask(mask)
        out.append(dst_path)
    return out


@pytest.fixture(params=["synthetic", "real"])
def server(request, tmp_path, make_geotiff, build_store):
    """The app on two images: seeded synthetic GeoTIFFs with fake fingerprints, or crops of the
    real orthomosaics indexed with the real default model (skipped without ../shared/data)."""
    from tilesearch.web import create_app

    if request.param == "real":
        from tilesearch import api

        orthos = Path(__file__).resolve().parents[2] / "shared" / "data" / "orthos"
        if not orthos.is_dir():
            pytest.skip(f"real data not found at {orthos}")
        path = tmp_path / "e2e.tiles"
        report = api.index(real_crops(tmp_path, orthos), path)
        assert report.ok and report.tiles_added > 2 * K
    else:
        images = [make_geotiff(tmp_path / f"{n}.tif", 1400, 1100, crs="EPSG:32633", seed=s)
                  for n, s in (("north", 4), ("south", 5))]
        store = build_store(images, path=tmp_path / "e2e.tiles")
        store.close()
        path = store.path
    with running(create_app(path)) as url:
        yield url, request.param


def test_click_search_mark_negative_and_download(server, tmp_path):
    server, kind = server
    with sync_api.sync_playwright() as p:
        browser = browser_of(p)
        try:
            page, outside = watched_page(browser, server)
            page.goto(server)
            sync_api.expect(page.locator("#facts")).to_contain_text("2 images")
            page.wait_for_function("document.querySelectorAll('.leaflet-tile-loaded').length > 0")
            page.fill("#k", str(K))
            page.locator("#map").click(position={"x": 300, "y": 300})
            hits = page.locator("#gallery .hit")
            sync_api.expect(hits).to_have_count(K)
            sync_api.expect(page.locator("#query")).to_contain_text("tile")
            first = hits.nth(0).get_attribute("data-tile")
            hits.nth(0).locator(".neg").click()
            sync_api.expect(hits.nth(0)).to_have_class(re.compile(r"\bhit\b.*\bnegative\b"))
            page.click("#search-again")
            sync_api.expect(page.locator("#query")).to_contain_text("1 negative(s)")
            sync_api.expect(hits).to_have_count(K)
            again = [hits.nth(i).get_attribute("data-tile") for i in range(K)]
            assert first not in again
            page.wait_for_function("[...document.querySelectorAll('#gallery img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            with page.expect_download() as dl:
                page.click("#download-geojson")
            saved = tmp_path / "results.geojson"
            dl.value.save_as(saved)
            features = json.loads(saved.read_text())["features"]
            assert sum(f["properties"]["role"] == "hit" for f in features) == K
            assert page.locator("#message.error").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"web-e2e-{kind}.png"))
            assert not outside, f"the page fetched from elsewhere: {outside[:3]}"
        finally:
            browser.close()


@pytest.mark.parametrize("server", ["synthetic"], indirect=True)  # the page needs no real store
def test_api_docs_render_offline(server):
    """/docs draws Swagger UI from the package's own files: every operation shows, and any
    request for a URL outside the server fails the test (and is refused, as if offline)."""
    server, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            outside: list[str] = []

            def offline(route) -> None:
                if route.request.url.startswith((server, "blob:", "data:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort("internetdisconnected")

            page.route("**/*", offline)
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "docs")
            sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "tilesearch")
            post = page.locator(".opblock.opblock-post", has_text="/api/search")
            sync_api.expect(post.first).to_be_visible()
            sync_api.expect(page.locator(".opblock-summary-path", has_text="/api/info")
                            ).to_have_count(1)
            schema = json.loads(page.evaluate("fetch('/openapi.json').then(r => r.text())"))
            operations = sum(len(ops) for ops in schema["paths"].values())
            assert page.locator(".opblock").count() == operations > 3
            page.wait_for_load_state("networkidle")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-e2e-docs.png"))
            assert not outside, f"/docs fetched from elsewhere: {outside[:3]}"
            assert not failed and not errors, (failed[:3], errors[:3])
        finally:
            browser.close()


def test_page_shows_errors(server):
    server, kind = server
    if kind == "real":
        pytest.skip("one store is enough for the error display")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(server)
            sync_api.expect(page.locator("#facts")).to_contain_text("tiles")
            page.set_input_files("#upload", files=[{"name": "junk.png", "mimeType": "image/png",
                                                    "buffer": b"definitely not a png"}])
            sync_api.expect(page.locator("#message.error")).to_contain_text("junk.png")
        finally:
            browser.close()
