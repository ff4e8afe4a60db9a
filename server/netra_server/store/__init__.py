"""The store: the server's reads and writes of ClickHouse, over two interchangeable backends.

Public API (stable; the dashboard and the alert evaluator call these)::

    from netra_server.store import open_store
    store = open_store("chdb:///tmp/netra/store")        # or "clickhouse://user:pass@host:8123/db"
    store.migrate()
    totals = store.usage_totals(project_id, Window(start_ns, end_ns), tenant_id="acme")
    groups = store.usage_summary(project_id, "model", Window.all())
    stats = store.latency_stats(project_id, window)
    page = store.list_traces(project_id, TraceQuery(window=window, limit=50))
    spans = store.trace_spans(project_id, trace_id)
    rows = store.query("SELECT ... WHERE project_id = {p:String}", {"p": project_id})  # raw, JSON rows
    where, params = Store.span_filter(project_id, window, tenant_id="acme")  # for your own span SQL

All methods are synchronous and thread-safe: each thread gets its own backend connection (chDB
deadlocks when threads share one). In async code call them through ``await store.run(fn, *args)``,
which uses the store's own worker threads.

Every read of ``netra_spans`` uses ``FINAL`` (a ``ReplacingMergeTree``: a row written again replaces the
first). :meth:`Store.insert_spans` lets each span identity (project, trace id, span id) in once and
stores ancestors of spans with usage covered (``netra_server.billing``). The billing rule: a span
*counts* iff it has usage and is not covered (``has_usage = 1 AND covered = 0``); see ``docs/design.md``.

Usage totals and summaries (except by hour and minute) and latency percentiles read whole days of
their window from daily rollups while those are valid, and the rest from ``netra_spans FINAL``
(``netra_server.rollups``; the server refreshes them in the background, :meth:`Store.refresh_rollups`).

The modules of this package:

- :mod:`~netra_server.store.backend`: what a backend is, what both share (session settings,
  per-thread connections, :class:`StoreError`); :mod:`~netra_server.store.chdb` (embedded, the
  default) and :mod:`~netra_server.store.clickhouse` (a ClickHouse server) run the same SQL.
- :mod:`~netra_server.store.records`: the records the reads return (:class:`Window`,
  :class:`UsageTotals`, :class:`SpanRow`...) and how a row becomes one.
- :mod:`~netra_server.store.sql`: every statement the store runs.
- :mod:`~netra_server.store.base` (plumbing: threads, read consistency, rollup plans, span
  conditions), :mod:`~netra_server.store.reads` (usage, latency, spans of a trace),
  :mod:`~netra_server.store.traces` (the trace listing) and :mod:`~netra_server.store.core` (the
  :class:`Store`: schema, meta, projects, keys, span inserts) build the store class by class.
"""

from __future__ import annotations

from pathlib import Path

from netra_server.store.backend import SESSION_SETTINGS, Backend, StoreError
from netra_server.store.base import ReadBarrier
from netra_server.store.chdb import CHDB_SERVER_SETTINGS, ChdbBackend
from netra_server.store.clickhouse import ClickHouseBackend
from netra_server.store.core import Store
from netra_server.store.records import (
    MAX_NS,
    MIN_NS,
    ApiKeyRecord,
    LatencyStats,
    Project,
    SortField,
    SpanRow,
    TracePage,
    TraceQuery,
    TraceSummary,
    UsageGroup,
    UsageTotals,
    Window,
    span_type_name,
)
from netra_server.store.sql import COUNTED, SPAN_TYPE_SQL, span_name_condition

__all__ = [
    "CHDB_SERVER_SETTINGS",
    "COUNTED",
    "MAX_NS",
    "MIN_NS",
    "SESSION_SETTINGS",
    "SPAN_TYPE_SQL",
    "ApiKeyRecord",
    "Backend",
    "ChdbBackend",
    "ClickHouseBackend",
    "LatencyStats",
    "Project",
    "ReadBarrier",
    "SortField",
    "SpanRow",
    "Store",
    "StoreError",
    "TracePage",
    "TraceQuery",
    "TraceSummary",
    "UsageGroup",
    "UsageTotals",
    "Window",
    "open_store",
    "span_name_condition",
    "span_type_name",
]


def open_store(url: str, *, threads: int = 4, memory_limit_bytes: int | None = None) -> Store:
    """Open a store by URL: ``chdb:///abs/dir`` (embedded) or ``clickhouse[s]://user:pass@host:port/db``.
    ``memory_limit_bytes``: the embedded store's ``max_server_memory_usage`` (None: 1 GiB; 0: ClickHouse's
    default, 90% of RAM); ignored for a ClickHouse server, whose own configuration decides."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "chdb":
        path = url.split("://", 1)[1]
        if not path:
            raise StoreError("chdb:// store URL needs a folder, e.g. chdb:///home/me/.netra/data/store")
        Path(path).mkdir(parents=True, exist_ok=True)
        return Store(ChdbBackend(path, memory_limit_bytes=memory_limit_bytes), threads=threads)
    if scheme in ("clickhouse", "clickhouses", "http", "https"):
        if scheme in ("http", "https"):
            url = url.replace("http", "clickhouse", 1)
        return Store(ClickHouseBackend(url), threads=threads)
    raise StoreError(
        f"unknown store URL {url!r}: use chdb:///path/to/folder or clickhouse://user:password@host:8123/database"
    )
