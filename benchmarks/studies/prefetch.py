"""Reading random cold pages of a file, as a refining codec reads its candidates' codes: one
page fault at a time through a memory map, after asking the kernel for all of them at once
(``madvise(MADV_WILLNEED)``), or with ``pread`` from a pool of threads (as many requests in
flight as threads, where a disk serves several at once).

    python -m benchmarks.studies.prefetch [--gib 2] [--trials 30] [--file PATH] [--pages 32]
                                        [--threads 16]

Writes a file of random bytes under benchmarks/results (or reads an existing one given by
``--file``, e.g. a store's ``ann/fine-*.codes``, left in place), evicts it from the page cache
before every trial (``posix_fadvise(DONTNEED)``, no root needed), marks the mapping
``MADV_RANDOM`` (no read-around, as refine.py does) and alternates the ways. Prints median
milliseconds and their ratios to one fault at a time.

A file written just before is likely still cached by a virtual machine's host, so its
"cold" pages are not read from the disk; an existing file written long before is the honest
test of a disk.
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common.results import RESULTS_DIR, save

MODES = ("faults", "madvise", "threads")


def trial(m: mmap.mmap, fd: int, pages: list[int], mode: str,
          pool: ThreadPoolExecutor) -> float:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    view = memoryview(m)
    t = time.perf_counter()
    if mode == "threads":
        total = sum(b[0] for b in pool.map(
            lambda p: os.pread(fd, mmap.PAGESIZE, p * mmap.PAGESIZE), pages))
    else:
        if mode == "madvise":
            for p in pages:
                m.madvise(mmap.MADV_WILLNEED, p * mmap.PAGESIZE, mmap.PAGESIZE)
        total = sum(view[p * mmap.PAGESIZE] for p in pages)
    elapsed = time.perf_counter() - t
    view.release()
    assert total >= 0
    return elapsed * 1e3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--file", type=Path, help="an existing file to read (not written, kept)")
    ap.add_argument("--pages", type=int, default=32, help="pages a query (32: refine.py's "
                    "candidates for k = 10; 256 before)")
    ap.add_argument("--threads", type=int, default=16)
    a = ap.parse_args(argv)
    path = a.file or RESULTS_DIR / "prefetch.bin"
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
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        with open(path, "rb") as f, ThreadPoolExecutor(a.threads) as pool:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            m.madvise(mmap.MADV_RANDOM)
            for _ in range(a.trials):
                for mode in MODES:  # other pages each time (a mapped page stays cached)
                    pages = rng.choice(len(m) // mmap.PAGESIZE, a.pages, replace=False)
                    times[mode].append(trial(m, f.fileno(), pages.tolist(), mode, pool))
            m.close()
    finally:
        if not a.file:
            path.unlink(missing_ok=True)
    med = {mode: statistics.median(t) for mode, t in times.items()}
    print(f"{a.pages} cold random pages of a {a.gib:.3g} GiB file, median of {a.trials}: "
          f"one fault at a time {med['faults']:.1f} ms, madvise {med['madvise']:.1f} ms "
          f"({med['faults'] / med['madvise']:.1f}x), pread from {a.threads} threads "
          f"{med['threads']:.1f} ms ({med['faults'] / med['threads']:.1f}x)")
    save({"pages": a.pages, "threads": a.threads, "file_gib": a.gib, "trials": a.trials,
          "existing_file": str(a.file) if a.file else None,
          "one_at_a_time_ms": med["faults"], "prefetched_ms": med["madvise"],
          "threads_ms": med["threads"], "ratio": med["faults"] / med["madvise"],
          "threads_ratio": med["faults"] / med["threads"]},
         RESULTS_DIR / ("prefetch-file.json" if a.file else "prefetch.json"))


if __name__ == "__main__":
    main()
