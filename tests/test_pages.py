"""Scattered rows of a store's vectors: the same values, and only their pages read."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from test_ann import add_image

from tilesearch.errors import StoreError
from tilesearch.models.base import ModelIdentity
from tilesearch.store import PAGE, Store

DIM = 512  # 2 KB a row: two rows a page
IDENTITY = ModelIdentity("fake", "0" * 64, DIM, "none")


def store_of(path: Path, n: int, seed: int = 0) -> tuple[Store, np.ndarray]:
    x = np.random.default_rng(seed).random((n, DIM), dtype=np.float32)
    s = Store.create(path, IDENTITY)
    add_image(s, "/a.tif", x)
    return s, x


def test_rows_are_the_stored_vectors_across_appends_and_dropped_prefixes(tmp_path: Path) -> None:
    s, x = store_of(tmp_path / "s.tiles", 300)
    ids = np.array([0, 299, 7, 7, 150])
    assert np.array_equal(s.rows(ids), x[ids])
    assert s.rows(np.zeros(0, np.int64)).shape == (0, DIM)
    more = np.random.default_rng(1).random((50, DIM), dtype=np.float32)
    add_image(s, "/b.tif", more)
    assert np.array_equal(s.rows(np.array([320, 3])), np.stack([more[20], x[3]]))
    s.drop_full_before(100)
    assert np.array_equal(s.rows(np.array([100, 349])), np.stack([x[100], more[49]]))
    with pytest.raises(StoreError, match=r"kept: 100\.\.349"):
        s.rows(np.array([99]))
    with pytest.raises(StoreError):
        s.rows(np.array([350]))


def _resident(path: Path) -> int:
    """Pages of `path` in the page cache (mincore)."""
    libc = ctypes.CDLL(None, use_errno=True)
    m = np.memmap(path, np.uint8, "r")
    pages = -(-len(m) // PAGE)
    vec = (ctypes.c_ubyte * pages)()
    addr = ctypes.c_void_p(m.__array_interface__["data"][0])
    assert libc.mincore(addr, ctypes.c_size_t(len(m)), vec) == 0
    return sum(v & 1 for v in vec)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore and fadvise: Linux")
def test_scattered_rows_read_their_pages_and_no_others(tmp_path: Path) -> None:
    s, x = store_of(tmp_path / "s.tiles", 8000)  # 16 MB of vectors
    path = s.path / s.vectors_file
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    if _resident(path) > 0:
        pytest.skip("this file system keeps the pages cached (tmpfs?)")
    ids = np.array([11, 2500, 5001, 7998])
    assert np.array_equal(s.rows(ids), x[ids])
    assert _resident(path) <= len(ids)  # read-around would have read megabytes
