"""The web app under test: `tilesearch serve` (or the app under plain uvicorn) on 127.0.0.1
at a free port, in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common.data import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store: Path, port: int, env: dict[str, str], workers: int = 1,
                 app_options: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    """`tilesearch serve` on 127.0.0.1:`port`; with `app_options` (`create_app` keywords such
    as blas_threads and searches, which serve does not take) the app under plain uvicorn."""
    import httpx

    cmd = [sys.executable, "-m", "tilesearch", "serve", str(store), "--port", str(port),
           "--processes", str(workers)]
    if app_options is not None:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "tilesearch.web.server:app_from_env",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--workers", str(workers)]
        env = {**env, "TILESEARCH_SERVE_STORE": str(store),
               "TILESEARCH_SERVE_OPTIONS": json.dumps(app_options)}
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO), **env})
    url = f"http://127.0.0.1:{port}/api/info"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not answer within 60 s")
