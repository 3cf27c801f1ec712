"""Test helpers: a cheap deterministic fingerprinter for pipeline tests (the real models are
tested apart), the CLI run in-process, and a range-capable HTTP server for remote images."""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tilesearch.models.base import ModelIdentity


class FakeModel:
    """Fingerprint = per-channel mean and std plus a 4x4 grey thumbnail (22 values)."""

    identity = ModelIdentity("fake", "f" * 64, 22, "x/255")
    runtime = "numpy"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        x = tiles.astype(np.float32) / 255.0
        n, h, w, _ = x.shape
        grey = x.mean(axis=3).reshape(n, 4, h // 4, 4, w // 4).mean(axis=(2, 4)).reshape(n, 16)
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2)), grey], axis=1)


class FakeBlockModel(FakeModel):
    """`FakeModel`'s fingerprints under a block recipe: the indexer hands `for_blocks(stride)`
    blocks of 2 x 2 tiles, and each tile's fingerprint is `FakeModel`'s of its crop of the
    block, so a store indexed in blocks must hold what a per-tile one holds."""

    identity = ModelIdentity("fake", "f" * 64, 22, "x/255", recipe="rot4-128-blocks")

    def for_blocks(self, stride: int) -> FakeBlocks:
        return FakeBlocks(self, stride)


class FakeBlocks:
    """The block graph of `FakeBlockModel`: (N, side, side, 3) blocks -> (4 N, 22)."""

    def __init__(self, model: FakeBlockModel, stride: int) -> None:
        self.model, self.stride = model, stride
        self.identity, self.runtime = model.identity, model.runtime
        self.blocks_seen = 0

    def embed(self, blocks: np.ndarray) -> np.ndarray:
        n, side = blocks.shape[:2]
        t, s = side - self.stride, self.stride
        self.blocks_seen += n
        crops = np.stack([blocks[:, i * s:i * s + t, j * s:j * s + t]
                          for i in range(2) for j in range(2)], axis=1)
        return self.model.embed(crops.reshape(-1, t, t, 3))


def run_cli(args, capsys, monkeypatch, *, fake_model: bool = False):
    """Run `tilesearch ARGS` in this process (with `FakeModel` for every model load when
    `fake_model`); returns (exit code, stdout, stderr)."""
    import sys

    from tilesearch import api
    from tilesearch.cli import main

    if fake_model:
        monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    monkeypatch.setattr(sys, "argv", ["tilesearch", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with HTTP Range requests (what GDAL's /vsicurl/ needs)."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if rng is None or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start = int(rng[1])
        end = min(int(rng[2]) if rng[2] else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


@contextlib.contextmanager
def serve_folder(folder):
    """A range-capable HTTP server on 127.0.0.1 over `folder`; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)
