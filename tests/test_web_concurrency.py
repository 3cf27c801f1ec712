"""Image searches from several clients at once (issue 18): the OpenVINO runner had one infer
request shared by every thread ("Infer Request is busy")."""

from __future__ import annotations

import importlib.util
import io
import json
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
import torch
from fastapi.testclient import TestClient
from test_web_api import png_bytes

from tilesearch import api
from tilesearch.models import runtime as rt
from tilesearch.models.base import ModelIdentity
from tilesearch.web import create_app

RUNTIMES = [r for r in ("openvino", "onnxruntime", "torch")
            if importlib.util.find_spec(r) is not None]


def small_net(dim: int):
    """A few convolutions, slow enough (a few ms a batch) for calls to overlap."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3),
        torch.nn.ReLU(), torch.nn.Conv2d(32, dim, 3), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten())
    torch.manual_seed(0)
    return rt.tile_module(net, lambda x: x / 255.0)


def hammer(fn, threads: int = 6, calls: int = 8) -> list[str]:
    """Call fn from several threads at once; the errors raised."""
    errors: list[str] = []
    start = threading.Barrier(threads)

    def work():
        start.wait()
        for _ in range(calls):
            try:
                fn()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    return errors


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_runner_answers_several_threads_at_once(runtime, tmp_path, monkeypatch):
    if runtime == "onnxruntime" and importlib.util.find_spec("onnx") is None:
        pytest.skip("exporting to ONNX needs onnx")
    monkeypatch.setenv("TILESEARCH_CACHE", str(tmp_path))
    spec = rt.NetworkSpec(ModelIdentity("tiny", "1" * 64, 8, "x/255"), 96,
                          lambda: small_net(8))
    run = rt.open_runner(spec, runtime, 2)
    tiles = np.random.default_rng(0).integers(0, 255, (8, 96, 96, 3), dtype=np.uint8)
    want = run(tiles)

    def check():
        np.testing.assert_allclose(run(tiles), want, rtol=1e-4, atol=1e-5)

    assert hammer(check) == []


@pytest.mark.skipif("openvino" not in RUNTIMES, reason="openvino is not installed")
def test_parallel_uploads_all_answer(fake_store, tmp_path, monkeypatch):
    """Uploads from six clients at once, fingerprinted by an OpenVINO model."""
    monkeypatch.setenv("TILESEARCH_CACHE", str(tmp_path / "cache"))
    spec = rt.NetworkSpec(fake_store.identity, fake_store.tile_size, lambda: small_net(8))
    model = rt.CompiledFingerprinter(fake_store.identity, "openvino",
                                     rt.open_runner(spec, "openvino", 2), fake_store.tile_size)
    monkeypatch.setattr(api, "store_fingerprinter", lambda *a, **kw: model)
    fake_store.close()
    uploads = [png_bytes((300, 200), seed=s) for s in range(6)]
    statuses: list[int] = []
    with TestClient(create_app(fake_store.path, warm=False,
                               allowed_hosts=["testserver"])) as c:

        def upload():
            data = uploads[len(statuses) % len(uploads)]
            r = c.post("/api/search/image", files={"file": ("q.png", io.BytesIO(data))},
                       data={"params": json.dumps({"k": 3})})
            statuses.append(r.status_code)
            assert r.status_code == 200, r.text
            assert len(r.json()["results"]) == 3

        assert hammer(upload, threads=6, calls=4) == []
    assert statuses == [200] * 24
