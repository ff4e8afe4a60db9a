"""Read consistency: what a read sees of the spans acknowledged just before it (embedded store).

With the ingest journal (``netra_server.journal``) an export is acknowledged once its spans are in the
journal; they reach the store in one INSERT about once a second. A read can therefore answer

- ``bounded`` (the server's default, ``--read-consistency``): from what is inserted now, without
  waiting. Every span acknowledged before the answer's ``data_as_of`` (a Unix time, stated in the
  ``X-Netra-Data-As-Of`` header of every answer that read spans) is
  counted; the spans of the last moment may not be. ``data_as_of`` lags by the journal's flush
  interval plus one INSERT (about 1-2 s under heavy ingest; it is "now" when the journal is empty), and
  never by more than ``--max-read-staleness`` (5 s): past that, the read waits as a strong one does.
- ``strong`` (read-your-writes): the read first waits until every span acknowledged before it started
  is inserted (``Journal.flush_to``). Under heavy ingest that is one INSERT of up to a second of spans.

A request chooses with the ``consistency`` query parameter or the ``X-Netra-Consistency`` header
(``strong`` or ``bounded``); the answer names what it got in ``X-Netra-Consistency``. A ClickHouse
server store has no journal: every read there is strong, at no cost.

:class:`ReadConsistency` (ASGI middleware) reads the choice and puts a :class:`ReadContext` in a
context variable for the request; ``Store.run`` reads it and records the ``as_of`` of each read.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from netra_server.errors import error_response

__all__ = [
    "AS_OF_HEADER", "BOUNDED", "CONSISTENCIES", "HEADER", "PARAM", "STRONG", "ReadConsistency", "ReadContext",
    "current", "iso", "reading",
]

STRONG = "strong"
BOUNDED = "bounded"
CONSISTENCIES = (STRONG, BOUNDED)
HEADER = "x-netra-consistency"
PARAM = "consistency"
AS_OF_HEADER = "x-netra-data-as-of"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class ReadContext:
    """One request's reads: the consistency asked for (None: the server's default), and what they got."""

    consistency: str | None = None
    #: The consistency the reads used (the last one's; all of a request's reads use the same).
    used: str | None = None
    #: Unix seconds: every span acknowledged before this time is in what every read of the request saw.
    as_of: float | None = None

    def saw(self, consistency: str, as_of: float) -> None:
        self.used = consistency
        self.as_of = as_of if self.as_of is None else min(self.as_of, as_of)


_current: contextvars.ContextVar[ReadContext | None] = contextvars.ContextVar("netra_read_context", default=None)


def current() -> ReadContext | None:
    """The read context of the request being served (None outside a request)."""
    return _current.get()


def reading(consistency: str | None) -> contextvars.Token[ReadContext | None]:
    """Start a read context (for code outside the HTTP app); reset it with ``_current.reset(token)``."""
    return _current.set(ReadContext(consistency))


def iso(ts: float) -> str:
    """``data_as_of`` as RFC 3339 UTC with milliseconds (``2026-12-05T09:30:00.123Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _choice(scope: Scope) -> str | None:
    """The consistency a request asks for (header, else query parameter); raises ValueError if unknown."""
    value: str | None = None
    for name, raw in scope.get("headers") or ():
        if name == HEADER.encode():
            value = raw.decode("latin-1")
    if value is None:
        qs = scope.get("query_string") or b""
        if PARAM.encode() in qs:
            for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                if k == PARAM:
                    value = v
    if value is None:
        return None
    value = value.strip().lower()
    if value not in CONSISTENCIES:
        raise ValueError(f"consistency must be 'strong' (read-your-writes) or 'bounded' (answer from what is "
                         f"inserted, stating data_as_of), not {value[:40]!r}")
    return value


class ReadConsistency:
    """ASGI middleware: a :class:`ReadContext` per HTTP request, and the ``X-Netra-Data-As-Of`` /
    ``X-Netra-Consistency`` headers on answers whose request read the spans' store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            choice = _choice(scope)
        except ValueError as exc:
            await error_response(400, str(exc))(scope, receive, send)
            return
        ctx = ReadContext(choice)
        token = _current.set(ctx)

        async def send_with_as_of(message: Message) -> None:
            if message["type"] == "http.response.start" and ctx.as_of is not None:
                headers = list(message.get("headers", []))
                headers.append((AS_OF_HEADER.encode(), iso(ctx.as_of).encode()))
                headers.append((HEADER.encode(), (ctx.used or STRONG).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_as_of)
        finally:
            _current.reset(token)
