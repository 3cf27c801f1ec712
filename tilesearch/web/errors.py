"""Errors as JSON: every failure answers {"error": kind, "detail": message} with a fitting
HTTP status."""

from __future__ import annotations

from typing import Any

from tilesearch.errors import (
    InputError,
    MissingDependencyError,
    ModelError,
    ModelMismatchError,
    OptionError,
    QueryError,
    StoreError,
    TilesearchError,
)


class NotFound(TilesearchError):
    """An image, tile or map tile the request names does not exist."""


class TooLarge(TilesearchError):
    """An upload exceeds the size limit."""


class Busy(TilesearchError):
    """The server cannot run the search now (all slots busy, or it ran past its deadline):
    503 with a Retry-After header."""

    retry_after = 5
    """Seconds a client should wait before trying again."""


STATUS: list[tuple[type[TilesearchError], int, str]] = [
    (NotFound, 404, "not found"),
    (TooLarge, 413, "upload too large"),
    (Busy, 503, "busy"),
    (InputError, 422, "unusable image"),
    (QueryError, 400, "bad query"),
    (OptionError, 400, "bad option"),
    (ModelMismatchError, 409, "model mismatch"),
    (MissingDependencyError, 500, "missing dependency"),
    (ModelError, 500, "model error"),
    (StoreError, 500, "store error"),
]


def error_status(exc: TilesearchError) -> tuple[int, str]:
    """HTTP status and short kind of a tilesearch error."""
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "error"


def error_headers(exc: TilesearchError) -> dict[str, str] | None:
    """Extra response headers of a tilesearch error (Retry-After for Busy)."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None


def body(kind: str, detail: Any) -> dict[str, Any]:
    return {"error": kind, "detail": detail}
