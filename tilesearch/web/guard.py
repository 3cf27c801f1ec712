"""Request guards, as one ASGI middleware: only the host names the server was started for (no
DNS rebinding), no cross-origin state-changing requests (no cross-site uploads), request bodies
bounded in size (413) and in time (408)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from tilesearch.web.errors import body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("", "0.0.0.0", "::")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})
CLOSE = {"Connection": "close"}


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) names this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names accepted in requests: the loopback names, `host` and `extra`; for a wildcard
    `host` (0.0.0.0, ::) also this machine's name and addresses."""
    names = {*LOOPBACK_NAMES, *extra}
    if host in WILDCARDS:
        names |= _own_names()
    else:
        names.add(host)
    return frozenset(n.strip("[]").lower() for n in names)


def _own_names() -> set[str]:
    name = socket.gethostname()
    try:
        _, aliases, addresses = socket.gethostbyname_ex(name)
    except OSError:
        aliases, addresses = [], []
    return {name, socket.getfqdn(name), *aliases, *addresses}


def host_name(value: str) -> str:
    """The name in a Host header value, without its port ("[::1]:8000" -> "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The middleware. `body_limit(path)` gives the largest body accepted on a route, in bytes;
    a body chunk may take at most `body_idle` seconds, the whole body `body_total`."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str],
                 body_limit: Callable[[str], int], body_idle: float = 10.0,
                 body_total: float = 120.0) -> None:
        self.app, self.hosts, self.body_limit = app, hosts, body_limit
        self.body_idle, self.body_total = body_idle, body_total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope["method"], headers)
        if refusal is None:
            limit = self.body_limit(scope["path"])
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                refusal = too_large(limit)
        if refusal is not None:
            status, kind, detail, extra = refusal
            response = JSONResponse(body(kind, detail), status_code=status, headers=extra)
            await response(scope, receive, send)
            return
        await self.app(scope, self.bounded(receive, limit), send)

    def refusal(self, method: str, headers: Headers) -> tuple[int, str, str, Any] | None:
        """Why a request must be refused (status, kind, detail, headers), or None."""
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return (421, "misdirected request", f"this server does not answer for host "
                    f"{host!r} (start it with --host NAME to serve another name)", CLOSE)
        if method in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if (site is not None and site not in SAME_ORIGIN_SITES) or (
                origin is not None and not self.same_origin(origin, host)):
            return (403, "forbidden", f"cross-origin {method} refused (origin {origin!r}, "
                    f"site {site!r})", None)
        return None

    def same_origin(self, origin: str, host: str) -> bool:
        """Whether an Origin header names this server as the Host header does."""
        parts = urlsplit(origin)
        return (parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
                and host_name(parts.netloc) in self.hosts)

    def bounded(self, receive: Receive, limit: int) -> Receive:
        """`receive`, raising 413 past `limit` body bytes and 408 when the body is late."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_total
        seen, done = 0, False

        async def receive_bounded() -> Message:
            nonlocal seen, done
            if done:  # the body is in: wait for a disconnect without a deadline
                return await receive()
            wait = max(0.0, min(self.body_idle, deadline - loop.time()))
            try:
                message = await asyncio.wait_for(receive(), wait)
            except asyncio.TimeoutError:
                raise HTTPException(408, "the request body did not arrive in time",
                                    headers=CLOSE) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, too_large(limit)[2], headers=CLOSE)
                done = not message.get("more_body", False)
            return message

        return receive_bounded


def too_large(limit: int) -> tuple[int, str, str, Any]:
    return (413, "request too large",
            f"the request body is larger than this route's {limit:,} byte limit", CLOSE)
