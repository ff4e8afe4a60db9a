"""What a usage client is told, defined once: how it connects and which traces or spans it lists.

:class:`ClientOptions` holds the settings of :class:`~netra.usage.UsageClient`,
:class:`~netra.usage.AsyncUsageClient`, the credits clients and ``Netra.usage``; :class:`TraceQuery` and
:class:`SpanQuery` hold the arguments of ``list_traces`` / ``iter_traces`` and ``list_spans_by_trace_id``
/ ``iter_spans_by_trace_id``, in the order those methods take them (the methods take exactly these
fields, as keyword or positional arguments). :mod:`netra.usage._calls` turns a query into the request,
the same for the sync and the async client, so adding a filter means adding a field here (a trace
filter by id: a field with ``metadata=_ID_FILTER``, sent as an ``equals`` filter) and nothing else.

All three are frozen and checked when built: a bad value raises ``ValueError`` / ``TypeError`` saying
what to fix, before any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from netra.usage import _calls
from netra.usage._calls import Direction, SortOrder
from netra.usage._times import TimeArg

__all__ = ["ClientOptions", "SpanQuery", "TraceQuery"]

#: ``field(metadata=...)`` of a :class:`TraceQuery` field sent as ``{"field": name, "operator": "equals"}``.
_ID_FILTER: Mapping[str, Any] = MappingProxyType({"id_filter": True})


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a usage or credits client reaches the server; the defaults of both clients.

    Args:
        base_url: The server's base URL, or its OTLP endpoint (``/telemetry`` and ``/v1/traces`` are
            stripped). Default: ``NETRA_OTLP_ENDPOINT``, else ``http://localhost:4318``.
        api_key: Sent as ``x-api-key``. Default: ``NETRA_API_KEY``.
        headers: Extra headers (they win over ``NETRA_HEADERS``); kept as a read-only copy.
        timeout: Seconds to wait for each attempt (connect, read, write).
        max_retries: Retries after the first attempt, on 408/429/5xx, timeouts and connection errors.
        backoff_factor: First retry waits about this many seconds, then twice as long each time.
        max_retry_wait: The longest wait between attempts; a longer Retry-After raises at once.

    The environment is read when a client is built from these (``UsageClient.from_options``), not here.
    """

    base_url: str | None = None
    api_key: str | None = None
    headers: Mapping[str, str] | None = None
    timeout: float = 10.0
    max_retries: int = 3
    backoff_factor: float = 0.5
    max_retry_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.headers is not None:
            object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        for name, kind in (("timeout", float), ("max_retries", int), ("backoff_factor", float),
                           ("max_retry_wait", float)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            object.__setattr__(self, name, kind(value))
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries!r}")
        if self.backoff_factor < 0 or self.max_retry_wait < 0:
            raise ValueError("backoff_factor and max_retry_wait must be 0 or more")

    def __repr__(self) -> str:  # the key and the headers (which may hold one) are not shown
        key = "None" if self.api_key is None else "'***'"
        headers = "None" if self.headers is None else f"<{len(self.headers)} header(s)>"
        return (
            f"ClientOptions(base_url={self.base_url!r}, api_key={key}, headers={headers}, timeout={self.timeout!r}, "
            f"max_retries={self.max_retries!r}, backoff_factor={self.backoff_factor!r}, "
            f"max_retry_wait={self.max_retry_wait!r})"
        )


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """The arguments of ``list_traces`` and ``iter_traces``: traces that started in the window,
    filtered by the ids given (all must match).

    By default traces are listed by start time, oldest first: ``direction="down"`` reads newer
    traces, ``"up"`` older ones (from the newest, or from ``cursor``). ``sort_field``: start_time,
    latency, cost or tokens (the Netra docs' names too: ``total_cost``, ``latency_ms``...).
    ``limit`` is the page size.
    """

    start_time: TimeArg
    end_time: TimeArg
    trace_id: str | None = field(default=None, metadata=_ID_FILTER)
    session_id: str | None = field(default=None, metadata=_ID_FILTER)
    user_id: str | None = field(default=None, metadata=_ID_FILTER)
    tenant_id: str | None = field(default=None, metadata=_ID_FILTER)
    limit: int | None = None
    cursor: str | None = None
    direction: Direction | None = "down"
    sort_field: str | None = None
    sort_order: SortOrder | None = None

    def __post_init__(self) -> None:
        _calls.trace_list_body(self)  # checks every argument (the request is built again when sent)

    def id_filters(self) -> dict[str, str]:
        """The id filters that are set, by field name."""
        found = {}
        for f in fields(self):
            if f.metadata.get("id_filter"):
                value = getattr(self, f.name)
                if value is not None:
                    found[f.name] = value
        return found


@dataclass(frozen=True, slots=True)
class SpanQuery:
    """The arguments of ``list_spans_by_trace_id`` and ``iter_spans_by_trace_id``: the spans of one
    trace, a page of ``limit`` at a time from ``cursor``; ``span_name`` filters by name."""

    trace_id: str
    cursor: str | None = None
    direction: Direction | None = "down"
    limit: int | None = None
    span_name: str | None = None

    def __post_init__(self) -> None:
        _calls.span_list_params(self)
