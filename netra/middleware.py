"""ASGI and WSGI middleware that give each request its own Netra request context.

A server reuses threads (WSGI) and may reuse tasks; without a fresh context per request, a tenant set
while serving one request could still be set when the same thread serves the next. These middlewares
start every request with an empty context (or the one ``context_from_request`` returns) and put the
previous one back afterwards.

``context_from_request`` lets you derive tenant / session / user from what the request *proved* (for
example its API key), before your app runs. Never take them from client-controlled headers or W3C
baggage: a client could then bill another tenant. Netra itself never reads baggage for these.

```python
app = NetraASGIMiddleware(app, context_from_request=lambda scope: {"tenant_id": tenant_for(scope)})
wsgi_app = NetraWSGIMiddleware(wsgi_app)
```
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, TypeAlias

from netra import _context

logger = logging.getLogger("netra")

__all__ = ["NetraASGIMiddleware", "NetraWSGIMiddleware"]

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp: TypeAlias = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ContextFromRequest: TypeAlias = Callable[[Any], Mapping[str, Any] | None]

_ALLOWED = frozenset({"tenant_id", "session_id", "user_id", "custom"})


def _initial(resolver: ContextFromRequest | None, request: Any) -> dict[str, _context.AttributeValue] | None:
    if resolver is None:
        return None
    try:
        values = resolver(request)
    except Exception:
        logger.warning("Netra: context_from_request raised; this request starts with an empty context", exc_info=True)
        return None
    if not values:
        return None
    unknown = set(values) - _ALLOWED
    if unknown:
        logger.warning("Netra: context_from_request returned unknown keys %s (allowed: %s)", sorted(unknown), sorted(_ALLOWED))
    return _context.build(
        tenant_id=values.get("tenant_id"),
        session_id=values.get("session_id"),
        user_id=values.get("user_id"),
        custom=values.get("custom"),
    )


class NetraASGIMiddleware:
    """Wrap an ASGI app: each HTTP / WebSocket connection runs with its own request context."""

    def __init__(self, app: ASGIApp, *, context_from_request: ContextFromRequest | None = None) -> None:
        self.app = app
        self.context_from_request = context_from_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = _context.REQUEST_CONTEXT.set(_initial(self.context_from_request, scope))
        try:
            await self.app(scope, receive, send)
        finally:
            _context.REQUEST_CONTEXT.reset(token)


class _ClosingIterable:
    """Iterates a WSGI response inside the request's context and closes it there."""

    def __init__(self, result: Iterable[bytes], ctx: contextvars.Context) -> None:
        self._result = result
        self._ctx = ctx
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._ctx.run(iter, self._result)
        return self._ctx.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            self._ctx.run(close)


class NetraWSGIMiddleware:
    """Wrap a WSGI app: each request (and the iteration of its response) runs in a fresh context copy."""

    def __init__(self, app: WSGIApp, *, context_from_request: ContextFromRequest | None = None) -> None:
        self.app = app
        self.context_from_request = context_from_request

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ctx = contextvars.copy_context()
        result = ctx.run(self._call, environ, start_response)
        return _ClosingIterable(result, ctx)

    def _call(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        _context.REQUEST_CONTEXT.set(_initial(self.context_from_request, environ))
        return self.app(environ, start_response)
