"""Searches never hold the server for good: BLAS runs one thread per request thread, and a
search that cannot start or finish within its deadline answers 503 busy, after which the
server answers again (issue 18)."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from tilesearch import api
from tilesearch.web import create_app


def app_client(store, **options):
    store.close()
    return TestClient(create_app(store.path, warm=False, allowed_hosts=["testserver"],
                                 **options))


class Blocked:
    """A stand-in for api.search that waits for `release` (at most 30 s), counting calls."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self.real = api.search

    def __call__(self, *args, **kwargs):
        self.started += 1
        self.release.wait(30)
        return self.real(*args, **kwargs)


def post_in_threads(client, n, body=None):
    """n POST /api/search in threads; returns (threads, responses by index)."""
    out: dict[int, object] = {}

    def post(i):
        out[i] = client.post("/api/search", json=body or {"tile": 3, "k": 3})

    threads = [threading.Thread(target=post, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, out


def test_the_app_makes_blas_single_threaded(fake_store):
    import faiss  # noqa: F401  (its BLAS is limited too)
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        app_client(fake_store)
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas), blas
        with threadpool_limits(2, user_api="blas"):
            app_client(fake_store, blas_threads=None)  # left as it is when asked
            assert all(lib["num_threads"] == 2 for lib in threadpool_info()
                       if lib["user_api"] == "blas")


def test_a_search_waiting_too_long_for_a_slot_answers_503(fake_store, monkeypatch):
    slow = Blocked()
    monkeypatch.setattr(api, "search", slow)
    with app_client(fake_store, searches=1, search_start_timeout=0.2,
                    search_finish_timeout=20) as c:
        try:
            threads, out = post_in_threads(c, 1)
            deadline = time.monotonic() + 10
            while not slow.started and time.monotonic() < deadline:
                time.sleep(0.01)
            t0 = time.monotonic()
            r = c.post("/api/search", json={"tile": 4, "k": 3})  # the one slot is taken
            assert time.monotonic() - t0 < 5
            assert r.status_code == 503 and r.json()["error"] == "busy", r.text
            assert "slot" in r.json()["detail"] and int(r.headers["retry-after"]) > 0
        finally:
            slow.release.set()
        threads[0].join(10)
        assert not threads[0].is_alive() and out[0].status_code == 200
        assert c.post("/api/search", json={"tile": 4, "k": 3}).status_code == 200


def test_a_search_past_its_deadline_answers_503_and_the_server_recovers(fake_store,
                                                                        monkeypatch):
    slow = Blocked()
    monkeypatch.setattr(api, "search", slow)
    with app_client(fake_store, searches=2, search_start_timeout=5,
                    search_finish_timeout=0.3) as c:
        try:
            threads, out = post_in_threads(c, 2)
            for t in threads:
                t.join(10)
            assert not any(t.is_alive() for t in threads), "a search held its slot"
            for r in out.values():
                assert r.status_code == 503 and r.json()["error"] == "busy", r.text
                assert "did not finish" in r.json()["detail"] and r.headers["retry-after"]
            # two searches still run past their deadline: the next answers 503 at once
            t0 = time.monotonic()
            r = c.post("/api/search", json={"tile": 4, "k": 3})
            assert r.status_code == 503 and "past their" in r.json()["detail"]
            assert time.monotonic() - t0 < 0.3 and slow.started == 2
        finally:
            slow.release.set()
        gate = c.app.state.gate
        deadline = time.monotonic() + 10
        while gate.overdue and time.monotonic() < deadline:
            time.sleep(0.01)
        r = c.post("/api/search", json={"tile": 4, "k": 3})  # recovered
        assert r.status_code == 200 and len(r.json()["results"]) == 3
