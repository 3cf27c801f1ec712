"""Reading a store's search files into memory ahead of its queries (`warm`), for servers.

Searches memory-map what they read: the index's inverted lists, a refining codec's finer
codes, the full vectors they re-rank, the SQLite metadata. From a cold disk each page is read
when a query first touches it, one page at a time (FAISS maps its index ``MADV_RANDOM``), so a
large store answers slowly until most of its pages have been touched. A long-running process
(``tilesearch serve``) instead reads these files once, front to back, in a background thread
(what it costs and saves at 10 M tiles: docs/benchmarks/search-index.md,
``python -m benchmarks.targets.ann``, which warms as ``serve`` does).

Files are read in the order queries need them (index, finer codes, metadata, full vectors),
each only if it fits in what is left of the budget (by default half the memory the system
reports available), so warming never pushes out what the machine needs. Page-cache pages are
shared: every process that maps the files gains.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tilesearch.store.store import Store

CHUNK = 8 << 20
"""Bytes read per call."""


def search_files(store: Store) -> list[Path]:
    """The files `store`'s searches read, most needed first (those that exist)."""
    names: list[str] = []
    entry = store.manifest.get("ann") or {}
    if entry.get("file"):
        names.append(entry["file"])
    if entry.get("fine"):
        names.append(entry["fine"]["codes"])
    names += ["meta.sqlite", "norms.f32", store.vectors_file]
    return [p for p in (store.path / n for n in names) if p.is_file()]


def available_memory() -> int | None:
    """Bytes the system reports available (``MemAvailable``), less where this process's
    memory cgroup (a container's limit) leaves less; None where it cannot tell."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    room = cgroup_room()
    if room is None:
        return avail
    return room if avail is None else min(avail, room)


def cgroup_room(root: Path = Path("/sys/fs/cgroup"),
                proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes this process's memory cgroup has left under its limit (page cache counts), or
    None without a limit (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``)."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":  # v2
            folder, limit_file, usage_file = root / rel.lstrip("/"), "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # v1
            folder = root / "memory" / rel.lstrip("/")
            limit_file, usage_file = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # v1 writes a huge number for none
            return max(0, int(limit) - usage)
    return None


@dataclass
class Warmer:
    """Reads `files` into the page cache while they fit in `budget` bytes (None: no limit)."""

    files: list[Path]
    budget: int | None
    read_bytes: int = 0
    warmed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> Warmer:
        """Read every file that fits, in order; a file that cannot be read is skipped."""
        buf = bytearray(CHUNK)
        left = self.budget
        for path in self.files:
            try:
                size = path.stat().st_size
                if left is not None and size > left:
                    self.skipped.append(path)
                    continue
                with open(path, "rb", buffering=0) as f:
                    while not self._stop.is_set() and (n := f.readinto(buf)):
                        self.read_bytes += n
            except OSError:
                self.skipped.append(path)
                continue
            if self._stop.is_set():
                break
            self.warmed.append(path)
            left = None if left is None else left - size
        return self

    def start(self) -> Warmer:
        """Run in a daemon thread (it never keeps the process alive)."""
        self._thread = threading.Thread(target=self.run, name="tilesearch-warm", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a started warmer; True when it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        """What it has done so far: running, bytes read, files read and skipped (names)."""
        return {"running": self.running, "read_bytes": self.read_bytes,
                "warmed": [p.name for p in self.warmed], "skipped": [p.name for p in self.skipped]}

    def stop(self) -> None:
        """Ask a running warmer to stop after its current read."""
        self._stop.set()


def warm(store: Store, *, background: bool = True, budget: int | None = -1) -> Warmer:
    """Read `store`'s search files into memory (see the module docstring).

    `budget`: bytes at most (-1: half of `available_memory`; None: no limit). In the
    background (the default) this returns at once; `Warmer.join` waits."""
    if budget == -1:
        avail = available_memory()
        budget = None if avail is None else avail // 2
    w = Warmer(search_files(store), budget)
    return w.start() if background else w.run()
