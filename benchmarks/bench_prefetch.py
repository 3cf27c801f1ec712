"""Reading 256 random cold pages of a memory-mapped file: one page fault at a time, or after
asking the kernel for all of them at once (``madvise(MADV_WILLNEED)``), as
``tilesearch/refine.py`` does for a refining codec's candidates.

    python benchmarks/bench_prefetch.py [--gib 2] [--trials 30] [--file PATH]

Writes a file of random bytes under benchmarks/results (or reads an existing one given by
``--file``, e.g. a store's ``ann/fine-*.codes``, left in place), evicts it from the page cache
before every trial (``posix_fadvise(DONTNEED)``, no root needed), marks the mapping
``MADV_RANDOM`` (no read-around, as refine.py does) and alternates the two ways. Prints median
milliseconds and their ratio.

A file written just before is likely still cached by a virtual machine's host, so its
"cold" pages are not read from the disk; an existing file written long before is the honest
test of a disk.
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from results_io import save

HERE = Path(__file__).resolve().parent
PAGES_PER_QUERY = 256


def trial(m: mmap.mmap, fd: int, rng: np.random.Generator, prefetch: bool) -> float:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    pages = rng.choice(len(m) // mmap.PAGESIZE, PAGES_PER_QUERY, replace=False)
    view = memoryview(m)
    t = time.perf_counter()
    if prefetch:
        for p in pages.tolist():
            m.madvise(mmap.MADV_WILLNEED, p * mmap.PAGESIZE, mmap.PAGESIZE)
    total = sum(view[p * mmap.PAGESIZE] for p in pages.tolist())
    elapsed = time.perf_counter() - t
    view.release()
    assert total >= 0
    return elapsed * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--file", type=Path, help="an existing file to read (not written, kept)")
    a = ap.parse_args()
    path = a.file or HERE / "results" / "prefetch.bin"
    size = path.stat().st_size // mmap.PAGESIZE * mmap.PAGESIZE if a.file else \
        int(a.gib * 2**30) // mmap.PAGESIZE * mmap.PAGESIZE
    a.gib = size / 2**30
    try:
        if not a.file and (not path.exists() or path.stat().st_size != size):
            chunk = os.urandom(2**26)
            with open(path, "wb") as f:
                for lo in range(0, size, len(chunk)):
                    f.write(chunk[:size - lo])
        rng = np.random.default_rng(0)
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            m.madvise(mmap.MADV_RANDOM)
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(a.trials):
                for prefetch in (False, True):
                    times[prefetch].append(trial(m, f.fileno(), rng, prefetch))
            m.close()
    finally:
        if not a.file:
            path.unlink(missing_ok=True)
    one, ahead = statistics.median(times[False]), statistics.median(times[True])
    print(f"{PAGES_PER_QUERY} cold random pages of a {a.gib:.3g} GiB file, median of "
          f"{a.trials}: one fault at a time {one:.1f} ms, prefetched {ahead:.1f} ms "
          f"({one / ahead:.1f}x)")
    save({"pages": PAGES_PER_QUERY, "file_gib": a.gib, "trials": a.trials,
          "existing_file": str(a.file) if a.file else None,
          "one_at_a_time_ms": one, "prefetched_ms": ahead, "ratio": one / ahead},
         HERE / "results" / ("prefetch-file.json" if a.file else "prefetch.json"))


if __name__ == "__main__":
    main()
