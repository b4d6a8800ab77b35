"""Who may read the dashboard: loopback binding, the token, and the Host guard.

Binds 127.0.0.1 by default; any other address needs a token. When a token is set,
every request (page, static files, event stream, annotate) must carry it as
``?token=`` or ``Authorization: Bearer``, else 401. Without a token, a request must
name a loopback host: a web page elsewhere that re-points its own name at 127.0.0.1
(DNS rebinding) cannot read the session. No CORS headers are ever sent, so other
origins cannot read answers or send JSON. Every answer carries a strict
Content-Security-Policy (no inline or remote script, style or connection).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import JSONResponse

__all__ = ["LOOPBACK_NAMES", "Guard", "is_loopback", "json_error", "new_token"]

_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", _CSP),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random URL-safe token for a dashboard bound to a non-loopback address."""
    return secrets.token_urlsafe(24)


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Guard:
    """ASGI middleware: token and Host checks on every request, security headers on every answer."""

    def __init__(self, app: Any, *, token: str | None, allowed_hosts: frozenset[str]):
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None:
            if not self._has_token(scope, headers):
                response = json_error(401, "missing or wrong dashboard token: open the address the program printed")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send_secured)
                return
        elif self._host_name(headers.get("host", "")) not in self.allowed_hosts:
            response = json_error(403, "unexpected Host header: open the address the program printed")
            await response(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)

    def _has_token(self, scope: dict, headers: dict[str, str]) -> bool:
        offered = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            offered.append(auth[7:].strip())
        expected = self.token.encode()
        return any(hmac.compare_digest(value.encode(), expected) for value in offered)

    @staticmethod
    def _host_name(host: str) -> str:
        host = host.strip().lower()
        if host.startswith("["):
            return host[1 : host.find("]")] if "]" in host else host
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
