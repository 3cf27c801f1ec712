"""Measurement: timers and medians, model throughput, neighbour overlap, and what a process
holds and reads (RSS, /proc/self/io, a memory cgroup, the page cache)."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def default_openvino_xml(identity: Any = None) -> Path:
    """The per-tile OpenVINO IR of the model with `identity` (default: the default model,
    loaded here so that it is exported), as the package exports and caches it."""
    from tilesearch.models import load_model
    from tilesearch.models.runtime import cache_dir

    identity = identity or load_model(runtime="openvino").identity
    return sorted(cache_dir().glob(
        f"{identity.name}-{identity.weights_sha256[:16]}-{identity.recipe}-256px-"
        "openvino-*.xml"))[-1]


# ----- time ---------------------------------------------------------------------------------------
def timed(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[float, Any]:
    """Seconds taken by ``fn(*args, **kw)``, and its result."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def tiles_per_second(run: Callable[[Any], Any], tiles: Any, repeats: int = 5) -> float:
    """Tiles a second of ``run(tiles)`` on one batch: one warm-up call, then the median of
    `repeats` timed calls."""
    run(tiles)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(tiles)
        times.append(time.perf_counter() - t)
    return len(tiles) / statistics.median(times)


def interleaved(measures: dict[str, Callable[[], float]], rounds: int
                ) -> dict[str, list[float]]:
    """Every round's figure of each measure: each taken once a round, in turn, the order
    reversed every other round, so that a shared machine's drift falls on all of them alike."""
    out: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            out[name].append(measures[name]())
    return out


def model_ceiling(fingerprinter: Any, batch: int = 64, repeats: int = 5) -> float:
    """Tiles/s of `fingerprinter` alone: median of `repeats` timed batches after a warm-up."""
    size = int(getattr(fingerprinter, "tile_size", 256))
    tiles = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    fingerprinter.embed(tiles)  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fingerprinter.embed(tiles)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def embed(run: Any, tiles: np.ndarray, batch: int = 64) -> np.ndarray:
    """``run`` over `tiles` in batches of `batch`, concatenated."""
    return np.concatenate([run(tiles[i:i + batch]) for i in range(0, len(tiles), batch)])


def recall_at_k(ref: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each row's k nearest neighbours (itself excluded) under both."""
    def knn(x: np.ndarray) -> np.ndarray:
        d = (x * x).sum(1)[:, None] - 2 * x @ x.T + (x * x).sum(1)[None]
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1)[:, :k]
    a, b = knn(ref), knn(other)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)]))


# ----- store size -------------------------------------------------------------------------------
def store_size(store: Any) -> dict[str, Any]:
    """Size figures of an open store (the ratios as `tilesearch info` gives them)."""
    from tilesearch import info

    facts = info(store)
    pixels, size = facts["pixels"], facts["bytes_on_disk"]
    return {
        "store": facts["store"],
        "images": facts["images"],
        "tiles": facts["tiles"],
        "dim": store.dim,
        "model": store.identity.name,
        "store_bytes": size,
        "vector_bytes": store.count * store.dim * 4,
        "bytes_per_tile": facts["bytes_per_tile"],
        "pixels": pixels,
        "float32_pixel_bytes": pixels * 3 * 4,
        "uint8_pixel_bytes": pixels * 3,
        "ratio_vs_float32": facts["compression_ratio"],
        "ratio_vs_uint8": pixels * 3 / size if size else None,
    }


# ----- memory and reads of this process --------------------------------------------------------
def read_bytes() -> int:
    """Bytes this process has had read from storage (``/proc/self/io``; 0 where absent)."""
    with contextlib.suppress(OSError, StopIteration):
        line = next(x for x in Path("/proc/self/io").read_text().splitlines()
                    if x.startswith("read_bytes:"))
        return int(line.split()[1])
    return 0


def memory() -> dict[str, float]:
    """Peak and current resident memory (MB), split into anonymous memory (what the process
    needs) and file pages (memory-mapped codes and vectors: page cache the OS can drop)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[f"{key}_mb"] = int(value.split()[0]) / 1024
    return fields


class MemoryLimit:
    """A memory cgroup of `limit` bytes, page cache included, for one child process."""

    def __init__(self, limit: int) -> None:
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.exists() and "memory" in v2.read_text().split():
            self.dir, files = Path(f"/sys/fs/cgroup/tilesearch-bench-{os.getpid()}"), (
                "memory.max", "cgroup.procs", "memory.peak")
        else:
            self.dir, files = Path(f"/sys/fs/cgroup/memory/tilesearch-bench-{os.getpid()}"), (
                "memory.limit_in_bytes", "cgroup.procs", "memory.max_usage_in_bytes")
        self.limit_file, self.procs, self.peak_file = (self.dir / f for f in files)
        try:
            self.dir.mkdir()
            self.limit_file.write_text(str(limit))
        except OSError as exc:
            sys.exit(f"--ram-limit: cannot make a memory cgroup at {self.dir} ({exc}); run "
                     "as a user who may, or without --ram-limit")

    def enter(self) -> None:
        """Move the calling process into the cgroup (a child's `preexec_fn`)."""
        self.procs.write_text(str(os.getpid()))

    def peak_mb(self) -> float:
        return int(self.peak_file.read_text()) / 2**20

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.dir.rmdir()


def drop_cached(folder: Path) -> None:
    """Drop `folder`'s files from the page cache (their pages are clean after fsync)."""
    for f in folder.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


# ----- memory of another process tree ------------------------------------------------------------
def tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {pid}, [pid]
    while frontier:
        kids = [p for p, pp in parents.items() if pp == frontier[-1] and p not in tree]
        frontier.pop()
        tree.update(kids)
        frontier += kids
    total = 0
    for p in tree:
        try:
            pages = int(Path(f"/proc/{p}/statm").read_text().split()[1])
            total += pages * os.sysconf("SC_PAGESIZE")
        except (OSError, ValueError):
            continue
    return total


class Sampler(threading.Thread):
    """Samples a process tree's RSS until stopped; `peak` holds the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, tree_rss(self.pid))
