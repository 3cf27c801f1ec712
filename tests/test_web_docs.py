"""The web app's /docs page is served from the package (Swagger UI vendored under
web/static/vendor/swagger-ui/): no URL outside the server, every asset answers; no /redoc.
The browser check that it renders with no outside request is in test_web_e2e.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from tilesearch.web import create_app

VENDOR = Path(__file__).resolve().parents[1] / "tilesearch" / "web" / "static" / "vendor"


@pytest.fixture
def client(fake_store):
    fake_store.close()
    with TestClient(create_app(fake_store.path, warm=False,
                               allowed_hosts=["testserver"])) as c:
        yield c


def referenced_urls(html: str) -> list[str]:
    """The URLs a page loads or calls: src/href attributes and quoted 'url' settings."""
    return (re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
            + re.findall(r'\burl\s*:\s*["\']([^"\']+)', html))


def test_docs_page_references_only_local_urls(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert not re.search(r"https?://|//cdn|\bcdn\.", page.text), "the page names a remote URL"
    urls = referenced_urls(page.text)
    assert "/openapi.json" in urls
    assert {u.rsplit("/", 1)[-1] for u in urls} >= {"swagger-ui-bundle.js", "swagger-ui.css",
                                                   "favicon-32x32.png"}
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io


def test_docs_assets_and_openapi_answer(client):
    urls = referenced_urls(client.get("/docs").text)
    assert len(urls) >= 4
    for url in urls:
        got = client.get(url)
        assert got.status_code == 200, url
        assert got.content, url
    js = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"] and b"SwaggerUIBundle" in js.content
    assert "text/css" in client.get("/static/vendor/swagger-ui/swagger-ui.css").headers[
        "content-type"]
    schema = client.get("/openapi.json").json()
    assert "/api/search" in schema["paths"] and "post" in schema["paths"]["/api/search"]


def test_redoc_is_not_served(client):
    """ReDoc is not vendored (it would add ~1 MB and Google fonts): /docs is the API page."""
    assert client.get("/redoc").status_code == 404


def test_vendored_swagger_ui_is_packaged_with_its_licence():
    folder = VENDOR / "swagger-ui"
    names = {p.name for p in folder.iterdir()}
    assert names >= {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE",
                     "NOTICE", "SOURCE.txt"}
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 3_000_000
    pyproject = (VENDOR.parents[3] / "pyproject.toml").read_text()
    assert '"web/static/vendor/swagger-ui/*"' in pyproject


def test_python_dash_m_tilesearch_help():
    done = subprocess.run([sys.executable, "-m", "tilesearch", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "Commands:" in done.stdout
    for command in ("index", "search", "info", "serve", "demo"):
        assert re.search(rf"^\s+{command}\b", done.stdout, re.M), command
