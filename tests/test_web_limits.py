"""Small requests cost little (issue 18): bounded lists and numbers, finite floats, bodies
bounded by size per route (413, also for chunked bodies), decompression bombs answer 413, and
uploads decode with bounded memory."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from test_web_api import png_bytes

from tilesearch.web import create_app
from tilesearch.web.app import FORM_OVERHEAD, MAX_JSON_BODY
from tilesearch.web.decode import decode_upload
from tilesearch.web.schemas import MAX_EXAMPLES, MAX_IMAGES, MAX_K

TESTS = Path(__file__).resolve().parent
MAX_UPLOAD = 200_000


@pytest.fixture
def client(fake_store):
    fake_store.close()
    with TestClient(create_app(fake_store.path, max_upload=MAX_UPLOAD, warm=False,
                               allowed_hosts=["testserver"])) as c:
        yield c


@pytest.mark.parametrize("body", [
    {"positives": [1] * (MAX_EXAMPLES + 1)},
    {"tile": 1, "negatives": [2] * (MAX_EXAMPLES + 1)},
    {"tile": 1, "images": [1] * (MAX_IMAGES + 1)},
    {"tile": 1, "k": MAX_K + 1},
    {"tile": 1, "bbox": [0, 0, 1, 1e300]},
    {"tile": 1, "visible": {"image": 1, "col_off": 0, "row_off": 0, "width": 1e308,
                            "height": 1e308}},
])
def test_oversized_lists_and_numbers_are_refused(client, body):
    r = client.post("/api/search", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid request"


def test_the_largest_lists_still_search(client):
    r = client.post("/api/search", json={"positives": [1] * MAX_EXAMPLES, "k": 3,
                                         "images": [1, 2] * (MAX_IMAGES // 2)})
    assert r.status_code == 200 and r.json()["results"]


@pytest.mark.parametrize("text", [
    '{"tile": 1, "bbox": [NaN, 0, 1, 1]}',
    '{"tile": 1, "bbox": [0, 0, 1e999, 1]}',
    '{"tile": 1, "bbox": [0, -Infinity, 1, 1]}',
    '{"tile": 1, "visible": {"image": 1, "col_off": NaN, "row_off": 0, "width": 9,'
    ' "height": 9}}',
    '{"tile": 1, "visible": {"image": 1, "col_off": 0, "row_off": 0, "width": 1e999,'
    ' "height": 9}}',
])
def test_non_finite_floats_are_refused(client, text):
    r = client.post("/api/search", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


def test_non_finite_upload_params_are_refused(client):
    params = '{"k": 3, "bbox": [0, 0, NaN, 1]}'
    r = client.post("/api/search/image", files={"file": ("q.png", png_bytes())},
                    data={"params": params})
    assert r.status_code == 400 and "params" in r.json()["detail"]


def test_a_json_body_over_the_limit_answers_413(client):
    big = json.dumps({"tile": 1, "pad": "x" * MAX_JSON_BODY})
    r = client.post("/api/search", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "request too large"
    assert f"{MAX_JSON_BODY:,}" in r.json()["detail"]


def test_a_chunked_body_growing_past_the_limit_answers_413(client):
    def chunks():
        yield b'{"tile": 1, "pad": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    r = client.post("/api/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "request too large", r.text


def test_an_upload_body_over_the_limit_answers_413_before_it_is_read(client):
    limit = MAX_UPLOAD + FORM_OVERHEAD
    r = client.post("/api/search/image", content=b"x" * (limit + 1),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and f"{limit:,}" in r.json()["detail"]
    r = client.post("/api/search/image", content=b"x",
                    headers={"Content-Type": "multipart/form-data; boundary=b",
                             "Content-Length": "-1"})
    assert r.status_code in (400, 413)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height px (what a decompression bomb looks like to Image.open)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(20_000, 20_000), (8_000, 8_000)])
def test_decompression_bombs_answer_413(client, size):
    r = client.post("/api/search/image", files={"file": ("bomb.png", png_header_only(*size))})
    assert r.status_code == 413 and r.json()["error"] == "upload too large", r.text
    assert "bomb.png" in r.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_uploads_are_reduced_to_the_tile_size(fmt):
    rng = np.random.default_rng(0)
    pixels = np.zeros((1500, 2000, 3), np.uint8)
    pixels[:, :1000] = 200
    pixels += rng.integers(0, 20, pixels.shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    img = decode_upload("q", buf.getvalue(), 256)
    assert img.size == (256, 256) and img.mode == "RGB"
    got = np.asarray(img).astype(int)
    assert abs(got[:, :120].mean() - 210) < 3 and abs(got[:, 136:].mean() - 10) < 3
    rgba = io.BytesIO()
    Image.fromarray(pixels).convert("RGBA").save(rgba, "PNG")
    assert decode_upload("q", rgba.getvalue(), 64).size == (64, 64)


MEMORY_SCRIPT = r"""
import io, json, resource, sys, threading
from PIL import Image
from fastapi.testclient import TestClient
sys.path.insert(0, sys.argv[2])
from fakes import FakeModel
from tilesearch import api
from tilesearch.web import create_app
from tilesearch.web.decode import release_memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6

buf = io.BytesIO()
Image.new("RGB", (7000, 7000), (90, 120, 60)).save(buf, "PNG")  # 49 Mpx, 0.2 MB
data = buf.getvalue()
model = FakeModel()
api.store_fingerprinter = lambda s, **kw: setattr(model, "identity", s.identity) or model
with TestClient(create_app(sys.argv[1], warm=False, allowed_hosts=["testserver"])) as c:
    c.post("/api/search/image", files={"file": ("w.png", b"warm")})
    release_memory()
    base = rss()
    peak = [base]
    done = threading.Event()
    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss())
    threading.Thread(target=sample, daemon=True).start()
    codes = []
    def upload():
        r = c.post("/api/search/image", files={"file": ("big.png", data)},
                   data={"params": json.dumps({"k": 3})})
        codes.append(r.status_code)
    threads = [threading.Thread(target=upload) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    done.set()
    print(json.dumps({"codes": codes, "peak": peak[0] - base, "after": rss() - base}))
"""


@pytest.mark.slow
def test_big_uploads_decode_with_bounded_memory(tmp_path, make_geotiff, build_store):
    """Four concurrent 49 Mpx PNG uploads: at most two decode at once, each holding one
    full-size copy (147 MB); the memory is handed back afterwards."""
    store = build_store([make_geotiff(tmp_path / "c.tif", 600, 500, crs="EPSG:32633")],
                        path=tmp_path / "fm", dim=22)
    store.close()
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(store.path), str(TESTS)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.splitlines()[-1])
    assert facts["codes"] == [200] * 4, facts
    assert facts["peak"] < 700, facts  # MB above the idle server; the old decode took 1,800
    assert facts["after"] < 150, facts
