"""Label mode and "Find all" end to end in headless Chromium (as tests/test_web_e2e.py): name a
label set, click tiles on the map to mark them + and -, reload the page and see them still
marked, press Find all, move the threshold slider and see the count change, download the
places as GeoJSON, answer a suggestion, audit the count (every card answered, the count
audited, still so after a reload). No request may leave the server. Screenshot:
tests/artifacts/web-find-e2e-{map,pixels}.png. On GeoTIFFs (the geographic map) and on
PNGs (each image in its pixels)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
from test_web_e2e import ARTIFACTS, CHROMIUM, browser_of, running, watched_page  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH "
                                 "(Debian: apt-get install chromium)")]
PLUS = [(150, 150), (330, 150), (150, 330)]
"""Map points clicked to mark +: far enough apart to be different tiles."""
MINUS = [(650, 560), (720, 250)]


@pytest.fixture(params=["map", "pixels"])
def server(request, tmp_path, make_geotiff, make_png, build_store):
    """The app on two seeded synthetic images with fake fingerprints: GeoTIFFs (drawn on the
    geographic map) or PNGs without georeferencing (drawn in their pixels); and the view."""
    from tilesearch.web import create_app

    if request.param == "map":
        images = [make_geotiff(tmp_path / f"{n}.tif", 1400, 1100, crs="EPSG:32633", seed=s)
                  for n, s in (("north", 4), ("south", 5))]
    else:
        images = [make_png(tmp_path / f"{n}.png", 1400, 1100, seed=s)
                  for n, s in (("north", 4), ("south", 5))]
    store = build_store(images, path=tmp_path / "e2e.tiles")
    store.close()
    with running(create_app(store.path, warm=False)) as url:
        yield url, request.param


def open_label_mode(page, server: str) -> None:
    page.goto(server)
    sync_api.expect(page.locator("#facts")).to_contain_text("2 images")
    page.wait_for_function("document.querySelectorAll('.leaflet-tile-loaded').length > 0")
    page.select_option("#mode", "label")
    sync_api.expect(page.locator("#label-panel")).to_be_visible()


def test_label_reload_find_slide_and_export(server, tmp_path):
    server, view = server
    # the score overlay: Web Mercator tiles on the map, one image in an image's pixels
    heat = ".heatmap img.leaflet-tile" if view == "map" else "img.heatmap"
    with sync_api.sync_playwright() as p:
        browser = browser_of(p)
        try:
            page, outside = watched_page(browser, server)
            open_label_mode(page, server)
            page.fill("#label-set", "pools")
            page.press("#label-set", "Enter")
            sync_api.expect(page.locator("#message")).to_contain_text("New label set pools")
            items = page.locator("#label-list li")
            for n, (x, y) in enumerate(PLUS, 1):
                page.locator("#map").click(position={"x": x, "y": y})
                sync_api.expect(items).to_have_count(n)
            page.check("input[name=mark-kind][value=negative]")
            for n, (x, y) in enumerate(MINUS, len(PLUS) + 1):
                page.locator("#map").click(position={"x": x, "y": y})
                sync_api.expect(items).to_have_count(n)
            sync_api.expect(page.locator("#label-counts")).to_have_text("pools: 3 + · 2 −")
            sync_api.expect(page.locator("path.label-mark.positive")).to_have_count(3)
            sync_api.expect(page.locator("path.label-mark.negative")).to_have_count(2)

            # a second click with the same mark unmarks; the list's x unmarks too
            page.locator("#map").click(position={"x": MINUS[0][0], "y": MINUS[0][1]})
            sync_api.expect(items).to_have_count(4)
            page.locator("#map").click(position={"x": MINUS[0][0], "y": MINUS[0][1]})
            sync_api.expect(items).to_have_count(5)

            page.reload()  # the marks are in the store: they come back
            open_label_mode(page, server)
            sync_api.expect(page.locator("#label-set")).to_have_value("pools")
            sync_api.expect(items).to_have_count(5)
            sync_api.expect(page.locator("#label-list li.positive")).to_have_count(3)
            sync_api.expect(page.locator("path.label-mark")).to_have_count(5)

            page.click("#find-all")
            count = page.locator("#find-count")
            sync_api.expect(count).to_contain_text("places")
            sync_api.expect(count).to_contain_text("≥ 0.50")
            before = count.inner_text()
            sync_api.expect(page.locator(heat).first).to_be_attached()
            page.focus("#threshold")
            for _ in range(30):
                page.keyboard.press("ArrowLeft")  # 0.50 -> 0.20, debounced
            sync_api.expect(page.locator("#threshold-value")).to_have_text("0.20")
            sync_api.expect(count).to_contain_text("≥ 0.20")
            assert count.inner_text() != before
            page.wait_for_function(f"[...document.querySelectorAll('{heat}')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")

            with page.expect_download() as dl:
                page.click("#export-geojson")
            saved = tmp_path / "places.geojson"
            dl.value.save_as(saved)
            data = json.loads(saved.read_text())
            assert data["type"] == "FeatureCollection" and data["label_set"] == "pools"
            # places in images without georeferencing are counted, but have no geometry
            placed = data["count"] if view == "map" else 0
            assert data["threshold"] == 0.2 and len(data["features"]) == placed
            assert f"{data['count']} places" in count.inner_text()

            page.click("#suggest")
            cards = page.locator("#suggestions .suggestion")
            sync_api.expect(cards.first).to_be_visible()
            first = cards.first.get_attribute("data-tile")
            cards.first.locator(".yes").click()
            sync_api.expect(items).to_have_count(6)
            sync_api.expect(page.locator(f"#label-list li.positive[data-tile='{first}']")
                            ).to_have_count(1)
            sync_api.expect(page.locator("#label-counts")).to_have_text("pools: 4 + · 2 −")

            page.click("#audit")  # at the slider's 0.20: answer every card, see it counted
            cards = page.locator("#audit-tiles .suggestion")
            audit = page.locator("#audit-state")
            sync_api.expect(audit).to_contain_text("Audit at ≥ 0.20: 0 of")
            n = cards.count()
            assert n > 0
            for left in range(n - 1, -1, -1):
                cards.first.locator(".no").click()
                sync_api.expect(cards).to_have_count(left)
            sync_api.expect(audit).to_contain_text(f"{n} of {n} answered · done")
            sync_api.expect(count).to_contain_text("audited 0.0")

            assert page.locator("#message.error").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"web-find-e2e-{view}.png"))
            page.reload()  # the answers are in the store
            open_label_mode(page, server)
            sync_api.expect(audit).to_contain_text(f"{n} of {n} answered · done")
            assert not outside, f"the page fetched from elsewhere: {outside[:3]}"
        finally:
            browser.close()
