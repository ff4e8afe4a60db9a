"""Security headers on every answer of the server (a pure ASGI middleware: nothing is buffered, the
OTLP receiver pays one dict lookup per answer).

- Everywhere: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (the dashboard's
  query strings name tenants and users; ``same-origin`` keeps the ``Origin`` header of same-origin form
  posts, which the dashboard checks), ``X-Frame-Options: DENY``.
- The dashboard (``/ui``, its static files, ``/``): a Content-Security-Policy without inline scripts
  (``script-src 'self'``: the pages load ``/ui/static/netra.js`` only), nothing framed or framing
  (``frame-ancestors 'none'``), forms posting to this origin only. Inline ``style`` *attributes* are
  allowed (``style-src-attr``): the bars of the charts and the waterfall are sized with them; no
  ``<style>`` element or outside stylesheet is.
- JSON routes: ``default-src 'none'; frame-ancestors 'none'`` (an answer is never a page).
- The OpenAPI pages (``/docs``, ``/redoc``) load FastAPI's UI from its CDN with inline scripts: they
  keep the headers above but get no CSP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["DASHBOARD_CSP", "SecurityHeaders"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"

_COMMON: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
_DASHBOARD = [*_COMMON, (b"content-security-policy", DASHBOARD_CSP.encode()),
              (b"cross-origin-opener-policy", b"same-origin")]
_API = [*_COMMON, (b"content-security-policy", API_CSP.encode())]
_NO_CSP = ("/docs", "/redoc")


def _headers_for(path: str) -> list[tuple[bytes, bytes]]:
    if path == "/" or path == "/ui" or path.startswith("/ui/"):
        return _DASHBOARD
    if path.startswith(_NO_CSP):
        return _COMMON
    return _API


class SecurityHeaders:
    """Adds the headers above to each HTTP answer (those the app set itself are kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _headers_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
