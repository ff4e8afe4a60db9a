"""The usage clients: :class:`UsageClient` (sync) and :class:`AsyncUsageClient` (async).

Both read what the Netra server has stored: usage per session and tenant, traces, and the spans of a
trace. Constructing one is cheap (``httpx`` is imported and the connection pool made on the first
request), so ``Netra.init`` can always build ``Netra.usage``.

What they share is written once: the constructor and the meaning of each attempt's answer in
``_Base``, each method's arguments in :mod:`netra.usage._calls` / :mod:`netra.usage.options` (through
``_calls.takes``), pagination in ``_calls.Pages``. What is left twice is what must differ: the I/O
(``await``) and the public methods themselves, each a decorated one-liner with its documentation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from netra.usage import _calls as calls
from netra.usage._answers import Outcome, interpret, retry_delay
from netra.usage._calls import Call, Pages, takes
from netra.usage._config import Settings, resolve
from netra.usage.errors import NetworkError, TimeoutError
from netra.usage.options import ClientOptions, SpanQuery, TraceQuery

if TYPE_CHECKING:
    from typing import Self

    import httpx

    from netra.usage.models import (
        CallUsageResult,
        SessionUsageData,
        SpansPage,
        TenantUsageData,
        TracesPage,
        TraceSpan,
        TraceSummary,
        TraceUsage,
        UsageSummary,
    )

__all__ = ["AsyncUsageClient", "UsageClient"]

T = TypeVar("T")
_Transport = TypeVar("_Transport")

_VERSION = "0.1.0"
_USER_AGENT = f"netra-python-usage/{_VERSION}"
_DEFAULTS = ClientOptions()


def _transport_outcome(exc: Exception, call: Call[Any], url: str, settings: Settings, attempts: int) -> Outcome:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        error: NetworkError = TimeoutError(
            f"no answer to {call.what} from {url} within {settings.options.timeout:g} s after {attempts} "
            f"attempt(s) ({type(exc).__name__}); if the server is slow on this query, raise timeout=",
            method=call.method,
            url=url,
        )
    else:
        error = NetworkError(
            f"could not get a complete answer to {call.what} from {url} after {attempts} attempt(s): "
            f"{type(exc).__name__}: {exc}. Is the Netra server running at {settings.base_url}?",
            method=call.method,
            url=url,
        )
    return Outcome(error=error, retryable=True)


class _Retry:
    """Marker of :meth:`_Base._settle`: try again after ``delay`` seconds."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay


class _Base(Generic[_Transport]):
    """What the sync and async clients share: their arguments, settings, and what each answer means."""

    _settings: Settings

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = _DEFAULTS.timeout,
        max_retries: int = _DEFAULTS.max_retries,
        transport: _Transport | None = None,
        backoff_factor: float = _DEFAULTS.backoff_factor,
        max_retry_wait: float = _DEFAULTS.max_retry_wait,
    ) -> None:
        options = ClientOptions(base_url, api_key, headers, timeout, max_retries, backoff_factor, max_retry_wait)
        self._setup(options, transport)

    @classmethod
    def from_options(cls, options: ClientOptions, *, transport: _Transport | None = None) -> Self:
        """A client with these :class:`~netra.usage.ClientOptions` (``transport``: an ``httpx`` transport)."""
        client = cls.__new__(cls)
        client._setup(options, transport)
        return client

    def _setup(self, options: ClientOptions, transport: _Transport | None) -> None:
        self._settings = resolve(options, _USER_AGENT)
        self._transport = transport
        self._closed = False

    @property
    def options(self) -> ClientOptions:
        """The options this client was built with (the environment is read into :attr:`base_url` and the headers)."""
        return self._settings.options

    @property
    def base_url(self) -> str:
        """The server's base URL (the OTLP endpoint without ``/telemetry`` or ``/v1/traces``)."""
        return self._settings.base_url

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._settings.base_url!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"this {type(self).__name__} is closed (close() or Netra.shutdown() was called); create a new one"
            )

    def _http_args(self) -> dict[str, Any]:
        """The arguments of ``httpx.Client`` / ``httpx.AsyncClient``."""
        import httpx

        settings = self._settings
        return {
            "base_url": settings.base_url,
            "headers": settings.headers,
            "timeout": httpx.Timeout(settings.options.timeout),
            "transport": self._transport,
            "follow_redirects": False,
        }

    @staticmethod
    def _request_args(call: Call[Any]) -> dict[str, Any]:
        return {
            "method": call.method,
            "url": call.path,
            "params": dict(call.params) if call.params else None,
            "json": dict(call.json) if call.json is not None else None,
        }

    def _settle(
        self, call: Call[T], attempt: int, response: httpx.Response | None, error: Exception | None
    ) -> T | None | _Retry:
        """The value of attempt number ``attempt`` (from 0), a :class:`_Retry`, or raise its error."""
        settings = self._settings
        url = settings.base_url + call.path
        if response is None:
            assert error is not None
            outcome = _transport_outcome(error, call, url, settings, attempt + 1)
        else:
            outcome = interpret(
                call, settings, response.status_code, response.headers, response.content, url, attempt + 1
            )
        if outcome.error is None:
            return None if outcome.not_found else call.parse(outcome.body)
        if outcome.retryable and attempt < settings.options.max_retries:
            delay = retry_delay(attempt, outcome.retry_after, settings)
            if delay is not None:
                return _Retry(delay)
        raise outcome.error from error


class UsageClient(_Base["httpx.BaseTransport"]):
    """Reads usage, traces and spans from a Netra server (synchronous).

    Args:
        base_url: The server's base URL, or its OTLP endpoint (``/telemetry`` and ``/v1/traces`` are
            stripped). Default: ``NETRA_OTLP_ENDPOINT``, else ``http://localhost:4318``.
        api_key: Sent as ``x-api-key``. Default: ``NETRA_API_KEY``.
        headers: Extra headers (they win over ``NETRA_HEADERS``, ``k=v`` pairs separated by commas).
        timeout: Seconds to wait for each attempt (connect, read, write).
        max_retries: Retries after the first attempt, on 408/429/5xx, timeouts and connection errors.
        transport: An ``httpx`` transport (for tests or proxies).
        backoff_factor: First retry waits about this many seconds, then twice as long each time.
        max_retry_wait: The longest wait between attempts; a longer Retry-After raises at once.

    The same settings as one object: :class:`~netra.usage.ClientOptions` and :meth:`from_options`.
    Use it as a context manager, or call :meth:`close`.
    """

    _client: httpx.Client | None = None

    def _setup(self, options: ClientOptions, transport: httpx.BaseTransport | None) -> None:
        super()._setup(options, transport)
        self._client = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        self._check_open()
        client = self._client
        if client is None:
            with self._lock:
                self._check_open()
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(**self._http_args())
                client = self._client
        return client

    def close(self) -> None:
        """Close the connection pool. Safe to call twice; the client cannot be used afterwards."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()
        elif self._transport is not None:
            self._transport.close()

    def __enter__(self) -> UsageClient:
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------------------

    def _send(self, call: Call[T]) -> T | None:
        import httpx

        client = self._http()
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: httpx.RequestError | None = None
            try:
                response = client.request(**self._request_args(call))
            except httpx.RequestError as exc:
                error = exc
            step = self._settle(call, attempt, response, error)
            if not isinstance(step, _Retry):
                return step
            time.sleep(step.delay)
            attempt += 1

    def _send_found(self, call: Call[T]) -> T:
        result = self._send(call)
        if result is None:  # pragma: no cover - only calls with none_if_not_found can be None
            raise AssertionError(f"{call.what}: unexpected not-found")
        return result

    # -- the Netra-compatible methods ---------------------------------------------------------------

    @takes(calls.session_usage)
    def get_session_usage(self, call: Call[SessionUsageData]) -> SessionUsageData | None:
        """``get_session_usage(session_id, start_time, end_time)``: tokens, requests and cost of one
        session in ``[start_time, end_time]``.

        A session with no usage in the window gives zero counts; ``None`` only when the server says
        the session does not exist.
        """
        return self._send(call)

    @takes(calls.tenant_usage)
    def get_tenant_usage(self, call: Call[TenantUsageData]) -> TenantUsageData | None:
        """``get_tenant_usage(tenant_id, start_time, end_time)``: tokens, requests, sessions and cost of
        one tenant in ``[start_time, end_time]``.

        A tenant with no usage in the window gives zero counts; ``None`` only when the server says
        the tenant does not exist.
        """
        return self._send(call)

    @takes(TraceQuery)
    def list_traces(self, query: TraceQuery) -> TracesPage:
        """One page of traces that started in the window, filtered by the ids given (all must match).

        Takes the fields of :class:`~netra.usage.TraceQuery`: ``start_time, end_time, trace_id=None,
        session_id=None, user_id=None, tenant_id=None, limit=None, cursor=None, direction="down",
        sort_field=None, sort_order=None``. By default traces are listed by start time, oldest first:
        ``direction="down"`` reads newer traces, ``"up"`` older ones (from the newest, or from
        ``cursor``). ``sort_field``: start_time, latency, cost or tokens (the Netra docs' names too:
        ``total_cost``, ``latency_ms``...).
        """
        return self._send_found(calls.list_traces(query))

    @takes(TraceQuery)
    def iter_traces(self, query: TraceQuery) -> Iterator[TraceSummary]:
        """Every trace of :meth:`list_traces` (the same arguments), fetching pages of ``limit`` lazily.

        Arguments are checked at once; a server that repeats a cursor raises :class:`PaginationError`.
        """
        return self._iterate(calls.trace_pages(query))

    @takes(SpanQuery)
    def list_spans_by_trace_id(self, query: SpanQuery) -> SpansPage | None:
        """One page of the spans of a trace (``span_name`` filters by name); the fields of
        :class:`~netra.usage.SpanQuery`: ``trace_id, cursor=None, direction="down", limit=None, span_name=None``.

        ``None`` only when the server says the trace does not exist.
        """
        return self._send(calls.list_spans(query))

    @takes(SpanQuery)
    def iter_spans_by_trace_id(self, query: SpanQuery) -> Iterator[TraceSpan]:
        """Every span of a trace, fetching pages of ``limit`` lazily; nothing for an unknown trace."""
        return self._iterate(calls.span_pages(query))

    # -- our own routes -----------------------------------------------------------------------------

    @takes(calls.trace_usage)
    def get_trace_usage(self, call: Call[TraceUsage]) -> TraceUsage | None:
        """``get_trace_usage(trace_id)``: per-span usage of one trace: each span's own usage, whether it
        counted under the billing rule, and its rollup over descendants. ``None`` when the server has no
        span of that trace.
        """
        return self._send(call)

    @takes(calls.call_usage)
    def get_call_usage(self, call: Call[CallUsageResult]) -> CallUsageResult:
        """``get_call_usage(trace_ids=None, call_ids=None, *, include_costs=False, limit=None)``: usage per call (span) and model, with descendant rollup (``POST /trace/usage``): every call
        of ``trace_ids`` and the calls ``call_ids`` (span ids). Each call has ``own`` (what it recorded)
        and ``rollup`` (counted usage of it and its descendants, each unit once), keyed by model;
        ``include_costs`` adds exact costs; ``limit`` caps the number of calls (``truncated`` says so).
        """
        return self._send_found(call)

    @takes(calls.usage_summary)
    def get_usage_summary(self, call: Call[UsageSummary]) -> UsageSummary:
        """``get_usage_summary(start_time, end_time, group_by="tenant", *, tenant_id=None, limit=None)``:
        usage in the window grouped by ``"tenant"``, ``"model"``, ``"user"``, ``"session"`` or ``"day"``
        (UTC), optionally for one tenant; ``limit`` caps the number of groups (largest cost first).
        """
        return self._send_found(call)

    def _iterate(self, pages: Pages[T]) -> Iterator[T]:
        while (call := pages.next_call()) is not None:
            page = self._send(call)
            yield from pages.items_of(page)
            pages.advance(page)


class AsyncUsageClient(_Base["httpx.AsyncBaseTransport"]):
    """The asynchronous twin of :class:`UsageClient`: the same arguments and methods, awaited.

    The ``iter_*`` methods return async iterators (``async for``). Use ``async with`` or
    ``await client.aclose()``.
    """

    _client: httpx.AsyncClient | None = None

    def _setup(self, options: ClientOptions, transport: httpx.AsyncBaseTransport | None) -> None:
        super()._setup(options, transport)
        self._client = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        self._check_open()
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(**self._http_args())
        return self._client

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call twice; the client cannot be used afterwards."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        elif self._transport is not None:
            await self._transport.aclose()

    async def __aenter__(self) -> AsyncUsageClient:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- sending ------------------------------------------------------------------------------------

    async def _send(self, call: Call[T]) -> T | None:
        import anyio
        import httpx

        client = self._http()
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: httpx.RequestError | None = None
            try:
                response = await client.request(**self._request_args(call))
            except httpx.RequestError as exc:
                error = exc
            step = self._settle(call, attempt, response, error)
            if not isinstance(step, _Retry):
                return step
            await anyio.sleep(step.delay)
            attempt += 1

    async def _send_found(self, call: Call[T]) -> T:
        result = await self._send(call)
        if result is None:  # pragma: no cover - only calls with none_if_not_found can be None
            raise AssertionError(f"{call.what}: unexpected not-found")
        return result

    # -- the Netra-compatible methods ---------------------------------------------------------------

    @takes(calls.session_usage)
    async def get_session_usage(self, call: Call[SessionUsageData]) -> SessionUsageData | None:
        """See :meth:`UsageClient.get_session_usage`."""
        return await self._send(call)

    @takes(calls.tenant_usage)
    async def get_tenant_usage(self, call: Call[TenantUsageData]) -> TenantUsageData | None:
        """See :meth:`UsageClient.get_tenant_usage`."""
        return await self._send(call)

    @takes(TraceQuery)
    async def list_traces(self, query: TraceQuery) -> TracesPage:
        """See :meth:`UsageClient.list_traces`."""
        return await self._send_found(calls.list_traces(query))

    @takes(TraceQuery)
    def iter_traces(self, query: TraceQuery) -> AsyncIterator[TraceSummary]:
        """See :meth:`UsageClient.iter_traces`; use with ``async for``."""
        return self._iterate(calls.trace_pages(query))

    @takes(SpanQuery)
    async def list_spans_by_trace_id(self, query: SpanQuery) -> SpansPage | None:
        """See :meth:`UsageClient.list_spans_by_trace_id`."""
        return await self._send(calls.list_spans(query))

    @takes(SpanQuery)
    def iter_spans_by_trace_id(self, query: SpanQuery) -> AsyncIterator[TraceSpan]:
        """See :meth:`UsageClient.iter_spans_by_trace_id`; use with ``async for``."""
        return self._iterate(calls.span_pages(query))

    # -- our own routes -----------------------------------------------------------------------------

    @takes(calls.trace_usage)
    async def get_trace_usage(self, call: Call[TraceUsage]) -> TraceUsage | None:
        """See :meth:`UsageClient.get_trace_usage`."""
        return await self._send(call)

    @takes(calls.call_usage)
    async def get_call_usage(self, call: Call[CallUsageResult]) -> CallUsageResult:
        """See :meth:`UsageClient.get_call_usage`."""
        return await self._send_found(call)

    @takes(calls.usage_summary)
    async def get_usage_summary(self, call: Call[UsageSummary]) -> UsageSummary:
        """See :meth:`UsageClient.get_usage_summary`."""
        return await self._send_found(call)

    async def _iterate(self, pages: Pages[T]) -> AsyncIterator[T]:
        while (call := pages.next_call()) is not None:
            page = await self._send(call)
            for item in pages.items_of(page):
                yield item
            pages.advance(page)
