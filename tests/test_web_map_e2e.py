"""The geographic map end to end in headless Chromium: a store of two images in different CRSs
and ground resolutions (a UTM GeoTIFF on disk and a lon/lat one served by URL) on one Web
Mercator map, with their footprints, a scale bar and the coordinates under the cursor; a click
on the URL image searches, every hit is outlined wherever it lies, the gallery and the map move
in step, and the basemap is fetched only once the user turns it on. Screenshot:
tests/artifacts/web-map-e2e.png."""

from __future__ import annotations

import pytest
from conftest import write_geotiff
from fakes import FakeModel, serve_folder

pytest.importorskip("fastapi")
pytest.importorskip("rio_tiler")
sync_api = pytest.importorskip("playwright.sync_api")
from test_web_e2e import ARTIFACTS, CHROMIUM, browser_of, running, watched_page  # noqa: E402

from tilesearch import api  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH "
                                 "(Debian: apt-get install chromium)")]
DEG = 4e-6


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The app on a store of utm.tif (on disk, EPSG:32633, 0.5 m) and deg.tif (by URL,
    EPSG:4326, about 0.38 m); yields the app's URL, the image server's URL and the store's
    tile count."""
    from affine import Affine

    from tilesearch.web import create_app

    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    remote = tmp_path / "remote"
    remote.mkdir()
    utm = write_geotiff(tmp_path / "utm.tif", 900, 700, crs="EPSG:32633", seed=1)
    write_geotiff(remote / "deg.tif", 900, 700, crs="EPSG:4326", seed=2,
                  transform=Affine(DEG, 0, 15.004, 0, -DEG, 44.9985))
    with serve_folder(remote) as base:
        report = api.index([utm, f"{base}/deg.tif"], tmp_path / "s.tiles", model="fake")
        assert len(report.indexed) == 2 and not report.failed
        app = create_app(tmp_path / "s.tiles", warm=False,
                         basemap=f"{base}/basemap/{{z}}/{{x}}/{{y}}.png")
        with running(app) as url:
            yield url, base, report.tiles_added


def test_two_crs_one_by_url_on_one_map(served):
    server, base, tiles = served
    with sync_api.sync_playwright() as p:
        browser = browser_of(p)
        try:
            page, outside = watched_page(browser, server)
            bad: list[str] = []
            page.on("response", lambda r: bad.append(f"{r.status} {r.url}")
                    if r.url.startswith(server) and r.status >= 400 else None)
            page.goto(server)
            sync_api.expect(page.locator("#image-select")).to_have_value("map")
            sync_api.expect(page.locator("#image-select option").first).to_have_text(
                "Map: 2 georeferenced images")
            sync_api.expect(page.locator("path.footprint")).to_have_count(2)
            page.wait_for_function("document.querySelectorAll('.leaflet-tile-loaded').length > 0")
            sync_api.expect(page.locator(".leaflet-control-scale-line")).to_contain_text("m")
            box = page.locator("#map").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5)
            sync_api.expect(page.locator("#cursor")).to_contain_text("°")

            # a click on the URL image: the query is its tile; every hit, in either image, is
            # outlined on the one map
            lon, lat = 15.004 + 850 * DEG, 44.9985 - 350 * DEG
            point = page.evaluate(f"(() => {{ const p = map.latLngToContainerPoint([{lat}, "
                                  f"{lon}]); return [p.x, p.y]; }})()")
            page.fill("#k", str(tiles))  # every distinct place (overlapping tiles suppressed)
            page.locator("#map").click(position={"x": point[0], "y": point[1]})
            sync_api.expect(page.locator("#query")).to_contain_text("results")
            hits = page.locator("#gallery .hit")
            n = hits.count()
            names = {hits.nth(i).locator(".src").inner_text().split(" · ")[0] for i in range(n)}
            assert names == {"utm.tif", "deg.tif"}
            sync_api.expect(page.locator("path.hit-outline")).to_have_count(n)
            sync_api.expect(page.locator("path.query-outline")).to_have_count(1)

            # gallery and map in step: a card shows its tile on the map; hovering lights both
            last = hits.nth(n - 1)
            last.locator("img").click()
            tile = int(last.get_attribute("data-tile"))
            inside = page.evaluate(f"""(async () => {{
                const t = await (await fetch('/api/tiles/{tile}')).json();
                const c = L.latLngBounds(t.footprint.map(([x, y]) => [y, x])).getCenter();
                return map.getBounds().contains(c);
            }})()""")
            assert inside
            last.hover()
            sync_api.expect(last).to_have_class(__import__("re").compile(r"\blit\b"))
            assert page.locator("path.hit-outline[stroke-width='5']").count() == 1

            assert not outside, f"fetched from elsewhere before the basemap was on: {outside}"
            page.get_by_label("basemap").check()
            page.wait_for_function("document.querySelectorAll('.basemap img').length > 0")
            page.wait_for_timeout(300)
            assert outside and all(u.startswith(f"{base}/basemap/") for u in outside)

            assert page.locator("#message.error").count() == 0
            assert not bad, bad[:3]
            ARTIFACTS.mkdir(exist_ok=True)
            page.get_by_label("basemap").uncheck()
            page.screenshot(path=str(ARTIFACTS / "web-map-e2e.png"))
        finally:
            browser.close()
