"""The dashboard's gate: every ``/api/`` request needs the token; a changing request from another origin is
refused; every response carries the security headers.

:class:`Guard` is a plain ASGI middleware (no per-request task group or body stream, unlike Starlette's
``BaseHTTPMiddleware``): a request costs a header lookup and a constant-time compare, which matters
because the live dashboard shares the simulation's process and its GIL (``bench/dashboard.py
--overhead``). The token comes from the cookie that ``/?token=…`` sets or from an
``Authorization: Bearer`` header; without it the answer is 401, a POST whose ``Origin`` is not the
``Host`` gets 403.
"""
from __future__ import annotations

import hmac
import json

__all__ = ["CSP", "Guard", "UNAUTHORISED"]

CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'"
UNAUTHORISED = ("missing or wrong token: open the URL that `socius serve` printed (it ends in ?token=…)")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", CSP.encode())]


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


class Guard:
    """ASGI middleware around ``app`` checking ``token`` (see the module docstring)."""

    def __init__(self, app, token: str, cookie: str):
        self.app, self.token, self.cookie = app, token.encode(), cookie

    def authorised(self, scope) -> bool:
        given = ""
        raw = _header(scope, b"cookie")
        if raw:
            from starlette.requests import cookie_parser  # the parser of Starlette's request.cookies
            given = cookie_parser(raw).get(self.cookie, "")
        auth = _header(scope, b"authorization") or ""
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].startswith("/api/"):
            if not self.authorised(scope):
                return await _refuse(send, 401, UNAUTHORISED)
            origin = _header(scope, b"origin")
            if scope["method"] not in ("GET", "HEAD") and origin is not None:
                if origin.split("://", 1)[-1] != (_header(scope, b"host") or ""):
                    return await _refuse(send, 403, f"cross-origin request from {origin} refused")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)
        await self.app(scope, receive, with_headers)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS]})
    await send({"type": "http.response.body", "body": body})
