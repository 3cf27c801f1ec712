"""A cheap deterministic fingerprinter for pipeline tests (the real models are tested apart)."""

from __future__ import annotations

import time

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
