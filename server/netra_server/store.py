"""The store: every SQL statement the server runs, over two interchangeable backends.

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

Backends (:class:`ChdbBackend`, :class:`ClickHouseBackend`) run the *same* SQL strings: ClickHouse
dialect with server-side parameters ``{name:Type}``, rows exchanged as ``JSONEachRow``.

Every read of ``netra_spans`` uses ``FINAL`` (a ``ReplacingMergeTree``: a row written again replaces the
first). :meth:`Store.insert_spans` lets each span identity (project, trace id, span id) in once and
stores ancestors of spans with usage covered (``netra_server.billing``). The billing rule: a span
*counts* iff it has usage and is not covered (``has_usage = 1 AND covered = 0``); see ``docs/design.md``.

Usage totals and summaries (except by hour and minute) and latency percentiles read whole days of
their window from daily rollups while those are valid, and the rest from ``netra_spans FINAL``
(``netra_server.rollups``; the server refreshes them in the background, :meth:`Store.refresh_rollups`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, ParamSpec, Protocol, TypeVar
from urllib.parse import unquote, urlparse

import orjson

from netra_server import billing, consistency, rollups, schema

__all__ = [
    "ApiKeyRecord",
    "Backend",
    "ChdbBackend",
    "ClickHouseBackend",
    "LatencyStats",
    "Project",
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
]

P = ParamSpec("P")
T = TypeVar("T")

#: Applied to every connection of both backends.
SESSION_SETTINGS: dict[str, int] = {
    "output_format_json_quote_decimals": 1,
    "output_format_json_quote_64bit_integers": 0,
    "do_not_merge_across_partitions_select_final": 1,
    # span rows carry the attribute maps, events and links as JSON objects/arrays: store their text
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    # spans are partitioned by day: one export may carry spans of many days (backfills, odd clocks)
    "max_partitions_per_insert_block": 0,
}

#: The billing rule as SQL: the span's usage counts in aggregates.
COUNTED = "(has_usage = 1 AND covered = 0)"

MIN_NS = 0
MAX_NS = 9_200_000_000_000_000_000  # 2261-07-..., inside DateTime64(9)'s range


class ReadBarrier(Protocol):
    """What the store needs of the ingest journal (``netra_server.journal.Journal``)."""

    @property
    def position(self) -> int: ...

    def flush_to(self, position: int) -> None: ...

    def inserted_as_of(self) -> float: ...


class StoreError(RuntimeError):
    """The store could not run a statement (unreachable, locked data folder, bad SQL)."""


# --------------------------------------------------------------------------------------------------
# Backends


class Backend(Protocol):
    kind: str

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert_json_rows(self, table: str, data: bytes) -> None: ...

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str) -> None: ...

    def close(self) -> None: ...


def _chdb_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """chDB parses parameter values in ClickHouse's escaped text form (as the HTTP ``param_`` interface
    does): escape strings as clickhouse-connect does for the server, so both backends bind the same value."""
    if not params:
        return {}
    return {
        k: v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") if isinstance(v, str) else v
        for k, v in params.items()
    }


#: Server settings of the embedded chDB (ClickHouse in this process), passed when it starts. ClickHouse's
#: defaults size the caches for a dedicated server (5 GiB mark and primary-index caches, a memory limit
#: of 90% of RAM); ``netra serve`` shares the machine with its application, so they are bounded here.
#: ``max_server_memory_usage`` (``--store-memory-mb``) caps what chDB tracks (caches, inserts, merges,
#: queries): a query or INSERT past it fails (an INSERT of the journal is retried, nothing is lost).
CHDB_SERVER_SETTINGS: dict[str, int] = {
    "max_server_memory_usage": 1024 * 1024 * 1024,
    "mark_cache_size": 128 * 1024 * 1024,
    "primary_index_cache_size": 64 * 1024 * 1024,
    "index_mark_cache_size": 32 * 1024 * 1024,
    "compiled_expression_cache_size": 32 * 1024 * 1024,
    "query_condition_cache_size": 16 * 1024 * 1024,
}

_CHDB_INSERT_SETTINGS = "SETTINGS max_threads = 1, max_insert_threads = 1, input_format_parallel_parsing = 0"


def _parse_rows(raw: bytes | str) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        raw = raw.encode()
    return [orjson.loads(line) for line in raw.splitlines() if line]


class ChdbBackend:
    """Embedded ClickHouse (chDB) on a data folder. One connection per thread; one process per folder."""

    kind = "chdb"

    def __init__(self, path: str, *, memory_limit_bytes: int | None = None) -> None:
        import chdb  # noqa: F401  (fail early with a clear error if the extra is missing)

        self.path = path
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        server = dict(CHDB_SERVER_SETTINGS)
        if memory_limit_bytes is not None:
            server["max_server_memory_usage"] = memory_limit_bytes  # 0: ClickHouse's default (90% of RAM)
        settings = "&".join(f"{k}={v}" for k, v in {**SESSION_SETTINGS, **server}.items())
        self._dsn = f"file:{path}?{settings}"
        self._conn()  # open now: a locked folder fails here, not on the first request

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            import chdb

            try:
                conn = chdb.connect(self._dsn)
            except Exception as exc:  # chdb raises RuntimeError with ClickHouse's message
                msg = str(exc)
                if "lock" in msg.lower() or "EmbeddedServer" in msg:
                    raise StoreError(
                        f"cannot open the data folder {self.path}: another process (a running `netra serve`?) "
                        f"has it open; stop it, or use another --data-dir ({msg.strip()})"
                    ) from exc
                raise StoreError(f"cannot open chDB store at {self.path}: {msg}") from exc
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            res = self._conn().query(sql, "JSONEachRow", params=_chdb_params(params))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc
        return _parse_rows(res.bytes())

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self._conn().query(sql, "CSV", params=_chdb_params(params))
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc

    def insert_json_rows(self, table: str, data: bytes) -> None:
        self.insert_rows(table, (), data, "JSONEachRow")

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str) -> None:
        cols = f" ({', '.join(columns)})" if columns else ""
        # A plain INSERT with the rows inline, not chDB's streaming ``send_insert``: that one reports
        # the rows as written and raises nothing when the part cannot be written (disk full, a folder
        # that cannot be written), so the caller would drop rows it believes stored. This statement
        # raises (NOT_ENOUGH_SPACE, filesystem errors). One thread: parallel parsing doubles the CPU.
        head = f"INSERT INTO {table}{cols} {_CHDB_INSERT_SETTINGS} FORMAT {fmt}\n".encode()
        try:
            self._conn().query(head + data)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass


class ClickHouseBackend:
    """A ClickHouse server through clickhouse-connect (HTTP). One client per thread."""

    kind = "clickhouse"

    def __init__(self, url: str) -> None:
        import clickhouse_connect  # noqa: F401

        u = urlparse(url)
        self._kwargs: dict[str, Any] = {
            "host": u.hostname or "localhost",
            "port": u.port or (8443 if u.scheme == "clickhouses" else 8123),
            "username": unquote(u.username or "default"),
            "password": unquote(u.password or ""),
            "database": (u.path or "/").strip("/") or "default",
            "secure": u.scheme == "clickhouses",
            "settings": dict(SESSION_SETTINGS),
            "autogenerate_session_id": False,
        }
        self.url = url
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._client()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            import clickhouse_connect

            try:
                client = clickhouse_connect.get_client(**self._kwargs)
            except Exception as exc:
                raise StoreError(f"cannot connect to ClickHouse at {self._kwargs['host']}:{self._kwargs['port']}: {exc}") from exc
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            raw = self._client().raw_query(sql, parameters=params or None, fmt="JSONEachRow")
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc
        return _parse_rows(raw)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self._client().command(sql, parameters=params or None)
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc

    def insert_json_rows(self, table: str, data: bytes) -> None:
        self.insert_rows(table, (), data, "JSONEachRow")

    def insert_rows(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str) -> None:
        try:
            self._client().raw_insert(table, column_names=list(columns) or None, insert_block=data, fmt=fmt)
        except Exception as exc:
            raise StoreError(str(exc).strip()) from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # pragma: no cover
                pass


# --------------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True)
class Window:
    """A time window on span start time, inclusive at both ends, in Unix nanoseconds."""

    start_ns: int = MIN_NS
    end_ns: int = MAX_NS

    @classmethod
    def all(cls) -> Window:
        return cls()

    def params(self) -> dict[str, int]:
        return {"w_start": self.start_ns, "w_end": self.end_ns}


@dataclass(frozen=True)
class Project:
    project_id: str
    name: str
    organisation_id: str
    created_at: str = ""


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    project_id: str
    key_hash: str
    name: str
    role: str
    tenant_id: str
    created_at: str
    revoked: bool


@dataclass(frozen=True)
class UsageTotals:
    """Aggregates under the billing rule. ``total_cost`` sums known costs; ``unpriced_count`` counts
    counted spans whose price is unknown (their cost is not in ``total_cost``)."""

    request_count: int
    token_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_cost: Decimal
    unpriced_count: int
    session_count: int
    span_count: int


@dataclass(frozen=True)
class UsageGroup:
    key: str
    totals: UsageTotals


@dataclass(frozen=True)
class LatencyStats:
    tenant_id: str
    span_count: int
    error_count: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


SortField = Literal["start_time", "latency", "cost", "tokens"]


@dataclass(frozen=True)
class TraceQuery:
    """What ``list_traces`` returns: traces with a span in ``window`` matching the filters.

    ``after`` is the sort key ``(value, trace_id)`` of the item the page continues from (from a
    cursor); ``direction`` ``down`` reads on in ``sort_order``, ``up`` reads back (nearest first).
    """

    window: Window = field(default_factory=Window)
    tenant_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    trace_id: str | None = None
    sort_field: SortField = "start_time"
    sort_order: Literal["asc", "desc"] = "desc"
    direction: Literal["up", "down"] = "down"
    after: tuple[str, str] | None = None
    limit: int = 50


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    latency_ns: int
    session_id: str
    tenant_id: str
    user_id: str
    environment: str
    service: str
    models: list[str]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    total_tokens: int
    total_cost: Decimal
    unpriced_count: int
    has_error: bool
    span_count: int
    #: The root span's Netra span type (SPAN, GENERATION, TOOL...; :func:`span_type_name`).
    span_type: str = "SPAN"

    def sort_value(self, sort_field: SortField) -> str:
        """The value of the sort key (as a string, for a cursor)."""
        if sort_field == "latency":
            return str(self.latency_ns)
        if sort_field == "cost":
            return str(self.total_cost)
        if sort_field == "tokens":
            return str(self.total_tokens)
        return str(self.start_ns)


@dataclass(frozen=True)
class TracePage:
    items: list[TraceSummary]
    has_more: bool


@dataclass(frozen=True)
class SpanRow:
    project_id: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    span_type: str
    tenant_id: str
    session_id: str
    user_id: str
    service: str
    environment: str
    start_ns: int
    end_ns: int
    duration_ns: int
    status_code: str
    status_message: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: Decimal | None
    cost_source: str
    cost_unknown: bool
    has_usage: bool
    covered: bool
    attributes: str
    resource_attributes: str
    events: str
    ingested_ms: int
    links: str = "[]"
    #: Distinct versions of this span delivered (1: every delivery was the same); the store keeps the
    #: first (``netra_server.billing``).
    versions: int = 1

    @property
    def type_name(self) -> str:
        """The span type as the Netra API names it (SPAN, GENERATION, TOOL, EMBEDDING, AGENT, USAGE):
        ``netra.span.type`` when the producer set it, else inferred as :data:`SPAN_TYPE_SQL` does."""
        return span_type_name(self.span_type, self.name, self.model, self.input_tokens + self.output_tokens)

    @property
    def counted(self) -> bool:
        """The billing rule: this span's usage counts in aggregates."""
        return self.has_usage and not self.covered


def span_type_name(span_type: str, name: str, model: str, tokens: int) -> str:
    """The Netra span type of a span (upper case): its ``netra.span.type`` when set; else EMBEDDING for
    an embeddings call (by name: ``embeddings <model>``, ``openai.embedding``), GENERATION for a model
    call (a model or tokens), SPAN otherwise. The same rule as :data:`SPAN_TYPE_SQL`."""
    if span_type:
        return span_type.upper()
    if "embedding" in name.lower():
        return "EMBEDDING"
    if model or tokens > 0:
        return "GENERATION"
    return "SPAN"


#: ``spanName`` of the form ``<provider>.<operation>`` (the span names of the Netra SDK's
#: instrumentations, e.g. ``openai.chat``) also finds the spans that GenAI semantic conventions name
#: ``<operation> <model>`` (ours: ``chat gpt-4o``), by provider and operation.
_SPAN_NAME_OPERATIONS: dict[str, tuple[str, ...]] = {
    "chat": ("chat",),
    "completion": ("text_completion", "chat"),
    "embedding": ("embeddings",),
    "embeddings": ("embeddings",),
    "response": ("chat", "responses", "generate_content"),
    "responses": ("chat", "responses", "generate_content"),
}


def span_name_condition(span_name: str, params: dict[str, Any]) -> str:
    """SQL for ``spanName``: the span's name, or its span type (``GENERATION``, ``TOOL``...: the Netra
    SDK documents "span name or span kind name"), or for ``<provider>.<operation>`` the spans named
    ``<operation> <model>`` of that provider. Case-insensitive."""
    params["s_name"] = span_name
    parts = ["lower(name) = lower({s_name:String})", f"{SPAN_TYPE_SQL} = upper({{s_name:String}})"]
    provider, _, operation = span_name.lower().partition(".")
    ops = _SPAN_NAME_OPERATIONS.get(operation)
    if provider and ops:
        params["s_provider"] = provider
        params["s_ops"] = ",".join(ops)
        parts.append(
            "(lower(provider) = {s_provider:String} AND "
            "lower(splitByChar(' ', name)[1]) IN (SELECT arrayJoin(splitByChar(',', {s_ops:String}))))"
        )
    return "(" + " OR ".join(parts) + ")"


# --------------------------------------------------------------------------------------------------
# SQL (all of it)

#: :func:`span_type_name` as SQL over a ``netra_spans`` row.
SPAN_TYPE_SQL = (
    "multiIf(span_type != '', upper(span_type), positionCaseInsensitive(name, 'embedding') > 0, 'EMBEDDING', "
    "model != '' OR input_tokens + output_tokens > 0, 'GENERATION', 'SPAN')"
)

#: The span type of each listed trace's root span (the first span without a parent, else the first).
#: No FINAL: a span stored twice has the same type, and argMin picks one of them.
SQL_TRACE_TYPES = f"""
SELECT trace_id AS t_trace_id, argMin({SPAN_TYPE_SQL}, (parent_span_id != '', start_time, span_id)) AS t_type
FROM netra_spans
WHERE {{where}}
GROUP BY trace_id
"""

_WINDOW_SQL = (
    "start_time >= fromUnixTimestamp64Nano({w_start:Int64}, 'UTC') "
    "AND start_time <= fromUnixTimestamp64Nano({w_end:Int64}, 'UTC')"
)

_TOTALS_COLUMNS = f"""
    countIf({COUNTED}) AS u_request_count,
    sumIf(input_tokens + output_tokens, {COUNTED}) AS u_token_count,
    sumIf(input_tokens, {COUNTED}) AS u_input_tokens,
    sumIf(output_tokens, {COUNTED}) AS u_output_tokens,
    sumIf(cached_tokens, {COUNTED}) AS u_cached_tokens,
    sumIf(cost, {COUNTED}) AS u_total_cost,
    countIf({COUNTED} AND cost IS NULL) AS u_unpriced_count,
    uniqExactIf(session_id, session_id != '') AS u_session_count,
    count() AS u_span_count
"""

SQL_USAGE_SUMMARY = f"""
SELECT {{key}} AS group_key, {_TOTALS_COLUMNS}
FROM netra_spans FINAL
WHERE {{where}}
GROUP BY group_key
ORDER BY {{order}}
LIMIT {{{{limit:UInt32}}}}
"""

_GROUP_KEYS: dict[str, str] = {
    "tenant": "tenant_id",
    "user": "user_id",
    "model": "model",
    "session": "session_id",
    "day": "toString(toDate32(start_time))",
    "hour": "toString(toStartOfHour(start_time, 'UTC'))",
    "minute": "toString(toStartOfMinute(start_time, 'UTC'))",
}

#: Grouped totals over ``rollups.usage_source`` rows.
SQL_USAGE_SUMMARY_ROLLUP = """
SELECT {key} AS group_key, {totals}
FROM ({source})
GROUP BY group_key
ORDER BY {order}
LIMIT {{limit:UInt32}}
"""

_ROLLUP_GROUP_KEYS: dict[str, str] = {
    "tenant": "r_tenant",
    "user": "r_user",
    "model": "r_model",
    "session": "r_session",
    "day": "toString(r_day)",
}

#: Per tenant over ``rollups.latency_source`` rows (quantile states merge exactly).
SQL_LATENCY = """
SELECT
    l_tenant AS tenant_id,
    sum(l_spans) AS span_count,
    sum(l_errors) AS error_count,
    quantilesExactMerge(0.5, 0.95, 0.99)(l_q) AS q
FROM ({source})
GROUP BY tenant_id
ORDER BY tenant_id
LIMIT 10000
"""

#: Per-trace aggregates over ``rollups.trace_source`` rows in sort order: the summaries
#: (``rollups.TRACE_COLUMNS``), or only the trace id and the sort key (:data:`_TRACE_KEYS`).
SQL_LIST_TRACES = """
SELECT {columns}
FROM ({source})
GROUP BY x_trace
{having}
ORDER BY {sort} {order}, t_trace_id {order}
LIMIT {{limit:UInt32}}
"""

#: Rows of ``rollups.trace_source`` (a slice) in start order: each row's trace and start.
SQL_TRACE_CANDIDATES = """
SELECT x_trace AS t_trace_id, toUnixTimestamp64Nano(x_start) AS t_start_ns
FROM ({source})
{cursor}
ORDER BY t_start_ns {order}, t_trace_id {order}
LIMIT {{limit:UInt32}}
"""

#: The sort key of each trace, computed as in :data:`rollups.TRACE_COLUMNS`.
_TRACE_KEYS: dict[str, str] = {
    "start_time": "toUnixTimestamp64Nano(min(x_start)) AS t_start_ns",
    "latency": "toUnixTimestamp64Nano(max(x_end)) - toUnixTimestamp64Nano(min(x_start)) AS t_latency_ns",
    "tokens": "sum(x_prompt) + sum(x_completion) AS t_total_tokens",
    "cost": "sum(x_cost) AS t_total_cost",
}

#: Trace ids (hex, so a comma never occurs in one) as one string parameter.
_IN_TRACES = "trace_id IN (SELECT arrayJoin(splitByChar(',', {t_ids:String})))"

_TRACE_SORT: dict[str, tuple[str, str]] = {
    # sort field -> (expression, cursor parameter as SQL)
    "start_time": ("t_start_ns", "{c_val:Int64}"),
    "latency": ("t_latency_ns", "{c_val:Int64}"),
    "tokens": ("t_total_tokens", "{c_val:UInt64}"),
    "cost": ("t_total_cost", "toDecimal128({c_val:String}, 10)"),
}

SQL_TRACE_SPANS = f"""
SELECT {schema.SPAN_SELECT}
FROM netra_spans FINAL
WHERE {{where}}
ORDER BY start_ns {{order}}, span_id {{order}}
LIMIT {{{{limit:UInt32}}}}
"""

SQL_INSERT_PROJECT = "INSERT INTO netra_projects (project_id, name, organisation_id, created_at, version) VALUES ({p:String}, {n:String}, {o:String}, now64(3), {v:UInt64})"
SQL_GET_PROJECTS = "SELECT project_id, name, organisation_id, toString(created_at) AS created_at FROM netra_projects FINAL {where} ORDER BY created_at, project_id"

SQL_INSERT_KEY = """
INSERT INTO netra_api_keys (key_id, project_id, key_hash, name, role, tenant_id, created_at, revoked, revoked_at, version)
VALUES ({k:String}, {p:String}, {h:String}, {n:String}, {r:String}, {t:String}, {c:DateTime64(3, 'UTC')}, {rv:UInt8},
        if({rv:UInt8} = 1, now64(3), NULL), {v:UInt64})
"""
SQL_GET_KEYS = """
SELECT key_id, project_id, key_hash, name, role, tenant_id, toString(created_at) AS created_at, revoked
FROM netra_api_keys FINAL {where} ORDER BY created_at, key_id
"""

SQL_GET_META = "SELECT value FROM netra_meta FINAL WHERE key = {k:String}"
SQL_SET_META = "INSERT INTO netra_meta (key, value, version) VALUES ({k:String}, {v:String}, {ver:UInt64})"


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def _totals(row: dict[str, Any]) -> UsageTotals:
    return UsageTotals(
        request_count=int(row["u_request_count"]),
        token_count=int(row["u_token_count"]),
        input_tokens=int(row["u_input_tokens"]),
        output_tokens=int(row["u_output_tokens"]),
        cached_tokens=int(row["u_cached_tokens"]),
        total_cost=_dec(row["u_total_cost"]),
        unpriced_count=int(row["u_unpriced_count"]),
        session_count=int(row["u_session_count"]),
        span_count=int(row["u_span_count"]),
    )


def _version() -> int:
    return time.time_ns()


# --------------------------------------------------------------------------------------------------
# The store


class Store:
    """All reads and writes of the server. Construct with :func:`open_store`."""

    def __init__(self, backend: Backend, *, threads: int = 4, use_rollups: bool = True) -> None:
        self.backend = backend
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="netra-store")
        self._closed = False
        #: Read whole days from the daily rollups when they are valid (False: every read from the spans).
        self.use_rollups = use_rollups
        self._rollups_supported: bool | None = None
        #: The ingest journal (``netra_server.journal``), when there is one: a statement that names
        #: ``netra_spans`` first waits until the spans acknowledged before its read began are inserted.
        self.read_barrier: ReadBarrier | None = None
        #: What a read through :meth:`run` sees when its request does not say (``netra_server.consistency``):
        #: ``strong`` waits for the journal; ``bounded`` answers from what is inserted (at most
        #: ``max_read_staleness`` seconds behind the acknowledgements, else it waits too).
        self.read_consistency: str = consistency.STRONG
        self.max_read_staleness: float = 5.0
        self._reads = threading.local()
        #: Span identity and the billing rule on every insert of spans (``netra_server.billing``).
        self.span_index = billing.SpanIndex()

    @property
    def kind(self) -> str:
        return self.backend.kind

    # -- plumbing ------------------------------------------------------------------------------

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store method in the store's worker threads (for async code). A strong read sees every
        span acknowledged before this call (one wait for the ingest journal, however many statements);
        a bounded one every span acknowledged before its ``as_of``, without waiting (see
        ``netra_server.consistency``; the request's choice, else :attr:`read_consistency`). The
        request's :class:`~netra_server.consistency.ReadContext` records what the read got."""
        loop = asyncio.get_running_loop()
        position, used, as_of = self._read_position()
        ctx = consistency.current()
        if ctx is not None:
            ctx.saw(used, as_of)
        return await loop.run_in_executor(self._executor, lambda: self._call(position, fn, args, kwargs))

    def _read_position(self) -> tuple[int | None, str, float]:
        """(the journal position a read waits for, the consistency it gets, its as_of)."""
        barrier = self.read_barrier
        now = time.time()
        if barrier is None:  # every acknowledged span is inserted already
            return None, consistency.STRONG, now
        ctx = consistency.current()
        wanted = (ctx.consistency if ctx is not None else None) or self.read_consistency
        if wanted == consistency.BOUNDED:
            as_of = barrier.inserted_as_of()
            if now - as_of <= self.max_read_staleness:
                return 0, consistency.BOUNDED, as_of  # position 0: no wait
        return barrier.position, consistency.STRONG, now

    def _call(self, position: int | None, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        self._reads.position = position
        try:
            return fn(*args, **kwargs)
        finally:
            self._reads.position = None

    def _before(self, sql: str) -> None:
        barrier = self.read_barrier
        if barrier is not None and "netra_spans" in sql:
            position = getattr(self._reads, "position", None)
            if position == 0:  # a bounded read (run): no wait
                return
            barrier.flush_to(barrier.position if position is None else position)

    def flush_ingest(self) -> None:
        """Return once every span acknowledged so far is in the store (the ingest journal's)."""
        barrier = self.read_barrier
        if barrier is not None:
            barrier.flush_to(barrier.position)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT; rows as dicts (Decimals as strings, integers as ints)."""
        self._before(sql)
        return self.backend.query(sql, params)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._before(sql)
        self.backend.command(sql, params)

    def insert_json_rows(self, table: str, data: bytes) -> None:
        """Insert ``JSONEachRow`` bytes; returns once the rows are durable."""
        self.backend.insert_json_rows(table, data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.backend.close()

    # -- schema ----------------------------------------------------------------------------------

    def migrate(self, retention_days: int | None = None) -> list[str]:
        """Apply pending migrations (and the retention TTL); returns the ids applied now."""
        self.command(schema.CREATE_MIGRATIONS_TABLE)
        done = {r["id"] for r in self.query(f"SELECT id FROM {schema.MIGRATIONS_TABLE} FINAL")}
        applied: list[str] = []
        for migration in list(schema.MIGRATIONS):
            if migration.id in done:
                continue
            for statement in migration.statements:
                self.command(statement)
            if migration.run is not None:
                migration.run(self)
            self.command(
                f"INSERT INTO {schema.MIGRATIONS_TABLE} (id) VALUES ({{id:String}})", {"id": migration.id}
            )
            applied.append(migration.id)
        self.set_retention(retention_days)
        self._rollups_supported = None
        return applied

    # -- rollups -----------------------------------------------------------------------------------

    def rollups_supported(self) -> bool:
        """Whether ``netra_spans`` is partitioned by day in this store (so rollups can be used)."""
        if self._rollups_supported is None:
            try:
                self._rollups_supported = rollups.supported(self)
            except StoreError:
                return False
        return self._rollups_supported

    def refresh_rollups(self, *, settle_seconds: float = 60.0, max_days: int | None = None) -> list[str]:
        """Compute the daily rollups of days that changed and have settled (no new part for
        ``settle_seconds``); returns the days computed. See ``netra_server.rollups``."""
        if not self.rollups_supported():
            return []
        return rollups.refresh(self, settle_seconds=settle_seconds, max_days=max_days)

    def _plan(self, window: Window) -> rollups.Plan:
        if not self.rollups_supported():
            return rollups.Plan.all_raw(window.start_ns, window.end_ns)
        return rollups.plan(self, window.start_ns, window.end_ns, use_rollups=self.use_rollups)

    def set_retention(self, retention_days: int | None) -> None:
        """Set (or remove, with None) the TTL of ``netra_spans``; a no-op when unchanged."""
        wanted = str(retention_days or 0)
        if (self.get_meta("retention_days") or "0") == wanted:
            return
        if retention_days:
            self.command(
                f"ALTER TABLE netra_spans MODIFY TTL toDateTime(start_time) + INTERVAL {int(retention_days)} DAY"
            )
        else:
            self.command("ALTER TABLE netra_spans REMOVE TTL")
        schema.span_index_retention(self, retention_days or 0)
        self.set_meta("retention_days", wanted)

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query(SQL_GET_META, {"k": key})
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.command(SQL_SET_META, {"k": key, "v": value, "ver": _version()})

    def secret(self, key: str = "cursor_secret") -> bytes:
        """A server-wide random secret, created once and shared by every process on this store."""
        value = self.get_meta(key)
        if value is None:
            self.command(SQL_SET_META, {"k": key, "v": secrets.token_hex(32), "ver": secrets.randbits(62)})
            value = self.get_meta(key)  # FINAL: every process converges on the same row
        assert value is not None
        return bytes.fromhex(value)

    # -- projects and keys -----------------------------------------------------------------------

    def create_project(self, name: str, *, project_id: str | None = None, organisation_id: str | None = None) -> Project:
        pid = project_id or "prj_" + secrets.token_hex(8)
        org = organisation_id or "org_" + pid.removeprefix("prj_")
        self.command(SQL_INSERT_PROJECT, {"p": pid, "n": name, "o": org, "v": _version()})
        return Project(pid, name, org)

    def list_projects(self) -> list[Project]:
        return [Project(**r) for r in self.query(SQL_GET_PROJECTS.format(where=""))]

    def get_project(self, project_id: str) -> Project | None:
        rows = self.query(SQL_GET_PROJECTS.format(where="WHERE project_id = {p:String}"), {"p": project_id})
        return Project(**rows[0]) if rows else None

    def put_key(self, rec: ApiKeyRecord) -> None:
        created = rec.created_at or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self.command(
            SQL_INSERT_KEY,
            {
                "k": rec.key_id, "p": rec.project_id, "h": rec.key_hash, "n": rec.name, "r": rec.role,
                "t": rec.tenant_id, "c": created, "rv": int(rec.revoked), "v": _version(),
            },
        )

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = self.query(SQL_GET_KEYS.format(where="WHERE key_id = {k:String}"), {"k": key_id})
        return self._key(rows[0]) if rows else None

    def list_keys(self, project_id: str | None = None) -> list[ApiKeyRecord]:
        if project_id is None:
            rows = self.query(SQL_GET_KEYS.format(where=""))
        else:
            rows = self.query(SQL_GET_KEYS.format(where="WHERE project_id = {p:String}"), {"p": project_id})
        return [self._key(r) for r in rows]

    @staticmethod
    def _key(r: dict[str, Any]) -> ApiKeyRecord:
        return ApiKeyRecord(
            key_id=r["key_id"], project_id=r["project_id"], key_hash=r["key_hash"], name=r["name"],
            role=r["role"], tenant_id=r["tenant_id"], created_at=r["created_at"], revoked=bool(r["revoked"]),
        )

    # -- spans: writes -----------------------------------------------------------------------------

    def insert_spans(self, data: bytes, keys: list[billing.SpanKey] | None = None) -> None:
        """Insert span rows (``IngestBatch.data`` from ``netra_server.otlp.build_rows``:
        ``JSONCompactEachRow`` of ``SPAN_COLUMNS``, attribute maps as JSON objects; ``keys``: its
        ``IngestBatch.keys``, else read from the rows); returns once they are durable.

        A span already stored (same project, trace id and span id) is not stored again, and ancestors
        of spans with usage are stored covered (``netra_server.billing``)."""
        self.span_index.insert(self.backend, data, keys, self._insert_span_rows)

    def _insert_span_rows(self, data: bytes) -> None:
        self.backend.insert_rows("netra_spans", schema.SPAN_COLUMNS, data, "JSONCompactEachRow")

    # -- spans: reads ------------------------------------------------------------------------------

    @staticmethod
    def _filters(
        project_id: str,
        *,
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
    ) -> tuple[list[str], dict[str, Any]]:
        """Conditions on columns that ``netra_spans`` and the rollup tables share (``trace_id``: not
        ``netra_usage_daily``)."""
        parts = ["project_id = {w_project:String}"]
        params: dict[str, Any] = {"w_project": project_id}
        for column, name, value in (("tenant_id", "w_tenant", tenant_id), ("session_id", "w_session", session_id),
                                    ("user_id", "w_user", user_id), ("trace_id", "w_trace", trace_id)):
            if value is not None:
                parts.append(f"{column} = {{{name}:String}}")
                params[name] = value
        return parts, params

    @staticmethod
    def span_filter(
        project_id: str,
        window: Window | None = None,
        *,
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
        extra: Iterable[str] = (),
    ) -> tuple[str, dict[str, Any]]:
        """The WHERE condition (without ``WHERE``) and its parameters for a read of ``netra_spans``:
        the project, the window on span start, the given ids, and the ``extra`` SQL conditions (ANDed).
        Parameter names start with ``w_``: the caller's own must not."""
        parts, params = Store._filters(
            project_id, tenant_id=tenant_id, session_id=session_id, user_id=user_id, trace_id=trace_id
        )
        if window is not None:
            parts.append(_WINDOW_SQL)
            params.update(window.params())
        parts.extend(extra)
        return " AND ".join(parts), params

    def usage_totals(
        self,
        project_id: str,
        window: Window,
        *,
        tenant_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> UsageTotals:
        """Totals under the billing rule for the spans matching the filters in the window."""
        where, params = self._filters(project_id, tenant_id=tenant_id, session_id=session_id, user_id=user_id)
        source = rollups.usage_source(self._plan(window), where, params, counted_only=False)
        sql = f"SELECT {rollups.usage_totals_columns(counted_only=False)} FROM ({source})"
        return _totals(self.query(sql, params)[0])

    def usage_summary(
        self,
        project_id: str,
        group_by: Literal["tenant", "model", "user", "session", "day", "hour", "minute"],
        window: Window,
        *,
        tenant_id: str | None = None,
        limit: int = 1000,
    ) -> list[UsageGroup]:
        """Totals grouped by tenant, model, user, session or day (UTC).

        Groups by model cover counted spans only (a span without usage has no model to bill); the
        other groupings cover all spans, so ``session_count`` counts every session seen.
        """
        key = _GROUP_KEYS.get(group_by)
        if key is None:
            raise ValueError(f"group_by must be one of {sorted(_GROUP_KEYS)}, not {group_by!r}")
        order = "group_key" if group_by in ("day", "hour", "minute") else "u_total_cost DESC, u_token_count DESC, group_key"
        counted_only = group_by == "model"
        if group_by in ("hour", "minute"):  # finer than a day: from the spans
            where_sql, params = self.span_filter(project_id, window, tenant_id=tenant_id)
            params["limit"] = limit
            rows = self.query(SQL_USAGE_SUMMARY.format(key=key, where=where_sql, order=order), params)
        else:
            where, params = self._filters(project_id, tenant_id=tenant_id)
            source = rollups.usage_source(self._plan(window), where, params, counted_only=counted_only)
            params["limit"] = limit
            sql = SQL_USAGE_SUMMARY_ROLLUP.format(
                key=_ROLLUP_GROUP_KEYS[group_by], totals=rollups.usage_totals_columns(counted_only=counted_only),
                source=source, order=order,
            )
            rows = self.query(sql, params)
        return [UsageGroup(str(r["group_key"]), _totals(r)) for r in rows]

    def latency_stats(
        self,
        project_id: str,
        window: Window,
        *,
        tenant_id: str | None = None,
        scope: Literal["root", "llm", "all"] = "root",
    ) -> list[LatencyStats]:
        """p50/p95/p99 of span duration and the error rate, per tenant.

        ``scope``: ``root`` spans (one per trace: the request as the user saw it), ``llm`` spans (the
        billed model calls: counted spans with a model), or ``all`` spans.
        """
        if scope not in rollups.LATENCY_SCOPES:
            raise ValueError(f"scope must be root, llm or all, not {scope!r}")
        where, params = self._filters(project_id, tenant_id=tenant_id)
        source = rollups.latency_source(self._plan(window), scope, where, params)
        out = []
        for r in self.query(SQL_LATENCY.format(source=source), params):
            n = int(r["span_count"])
            errors = int(r["error_count"])
            q = [float(x) / 1e6 for x in r["q"]]
            out.append(LatencyStats(r["tenant_id"], n, errors, errors / n if n else 0.0, q[0], q[1], q[2]))
        return out

    def list_traces(self, project_id: str, q: TraceQuery) -> TracePage:
        """One page of trace summaries (see :class:`TraceQuery`); totals follow the billing rule.

        Traces are aggregated from the daily trace rollups and the spans of the window's other days:
        first only the sort key of each trace, to find the page, then the summaries of the page's
        traces. Ordered by start time (the default), the page is found from the newest (or oldest) end
        of the window on, without reading all of it: see :meth:`_traces_by_start`."""
        forward = q.direction == "down"
        ascending = (q.sort_order == "asc") == forward
        where, params = self._filters(
            project_id, tenant_id=q.tenant_id, session_id=q.session_id, user_id=q.user_id, trace_id=q.trace_id
        )
        plan = self._plan(q.window)
        page = q.limit + 1
        if q.trace_id is not None:
            rows = self._trace_rows(plan, where, params, q.sort_field, ascending, q.after, page)
        elif q.sort_field == "start_time":
            rows = self._traces_by_start(plan, where, params, q, ascending)
        else:  # the sort key of every trace, then the summaries of the page's
            ids = [r["t_trace_id"] for r in self._trace_keys(plan, where, params, q.sort_field, ascending, q.after, page)]
            rows = self._trace_rows(plan, where, params, q.sort_field, ascending, q.after, page, ids) if ids else []
        items = [
            TraceSummary(
                trace_id=r["t_trace_id"], name=r["t_name"], kind=r["t_kind"], start_ns=int(r["t_start_ns"]),
                end_ns=int(r["t_end_ns"]), latency_ns=int(r["t_latency_ns"]), session_id=r["t_session_id"],
                tenant_id=r["t_tenant_id"], user_id=r["t_user_id"], environment=r["t_environment"],
                service=r["t_service"], models=list(r["t_models"]), prompt_tokens=int(r["t_prompt_tokens"]),
                completion_tokens=int(r["t_completion_tokens"]), cached_tokens=int(r["t_cached_tokens"]),
                total_tokens=int(r["t_total_tokens"]), total_cost=_dec(r["t_total_cost"]),
                unpriced_count=int(r["t_unpriced_count"]), has_error=bool(r["t_has_error"]),
                span_count=int(r["t_span_count"]),
            )
            for r in rows
        ]
        items = self._with_types(items[: q.limit + 1], where, params, q.window)
        return TracePage(items[: q.limit], len(items) > q.limit)

    def _with_types(
        self, items: list[TraceSummary], where: list[str], params: dict[str, Any], window: Window
    ) -> list[TraceSummary]:
        """``items`` with ``span_type`` set to their root span's type (one read of their spans)."""
        if not items:
            return items
        cond = " AND ".join([*where, _WINDOW_SQL, _IN_TRACES])
        # only the part of the window the page's traces span (their spans in the window start there)
        span = Window(max(window.start_ns, min(t.start_ns for t in items)), min(window.end_ns, max(t.end_ns for t in items)))
        rows = self.query(SQL_TRACE_TYPES.format(where=cond),
                          {**params, **span.params(), "t_ids": ",".join(t.trace_id for t in items)})
        types = {r["t_trace_id"]: str(r["t_type"]) for r in rows}
        return [replace(t, span_type=types.get(t.trace_id, "SPAN")) for t in items]

    @staticmethod
    def _trace_order(
        sort_field: SortField, ascending: bool, after: tuple[str, str] | None, params: dict[str, Any]
    ) -> tuple[str, str, str]:
        """The sort expression, ``ASC``/``DESC`` and the ``HAVING`` clause that starts after the cursor
        ``after`` (its values go into ``params``) for a trace aggregation ordered by ``sort_field``."""
        sort_expr, cursor_param = _TRACE_SORT[sort_field]
        having = ""
        if after is not None:
            having = f"HAVING ({sort_expr}, t_trace_id) {'>' if ascending else '<'} ({cursor_param}, {{c_id:String}})"
            params["c_val"], params["c_id"] = after
        return sort_expr, "ASC" if ascending else "DESC", having

    def _trace_rows(
        self,
        plan: rollups.Plan,
        where: list[str],
        params: dict[str, Any],
        sort_field: SortField,
        ascending: bool,
        after: tuple[str, str] | None,
        limit: int,
        trace_ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Trace summary rows over ``plan`` in sort order after the cursor ``after`` (only the traces
        ``trace_ids`` when given)."""
        params = dict(params)
        where = list(where)
        if trace_ids is not None:
            where.append(_IN_TRACES)
            params["t_ids"] = ",".join(trace_ids)
        sort_expr, order, having = self._trace_order(sort_field, ascending, after, params)
        params["limit"] = limit
        source = rollups.trace_source(plan, where, params)
        sql = SQL_LIST_TRACES.format(columns=rollups.TRACE_COLUMNS, source=source, having=having, sort=sort_expr, order=order)
        return self.query(sql, params)

    def _trace_keys(
        self,
        plan: rollups.Plan,
        where: list[str],
        params: dict[str, Any],
        sort_field: SortField,
        ascending: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """``t_trace_id`` and the sort key (``t_start_ns``, ``t_latency_ns``, ``t_total_tokens`` or
        ``t_total_cost``, as :data:`SQL_LIST_TRACES` computes them) of the first ``limit`` traces."""
        params = dict(params)
        sort_expr, order, having = self._trace_order(sort_field, ascending, after, params)
        params["limit"] = limit
        source = rollups.trace_source(plan, where, params)
        columns = f"x_trace AS t_trace_id, {_TRACE_KEYS[sort_field]}"
        sql = SQL_LIST_TRACES.format(columns=columns, source=source, having=having, sort=sort_expr, order=order)
        return self.query(sql, params)

    def _traces_by_start(
        self, plan: rollups.Plan, where: list[str], params: dict[str, Any], q: TraceQuery, ascending: bool
    ) -> list[dict[str, Any]]:
        """The page of trace summaries ordered by start time (a trace starts at its earliest span in
        the window), without aggregating every trace of the window.

        Rows (rollup rows of a trace, or spans) of a *slice* of the window next to where the page
        starts (the newest hour with data for newest-first, then 8x wider; rollup days whole) give
        candidates: the traces of the first ``n`` rows by start. The page is the first of the
        candidates by their exact start over the whole window. A trace that is no candidate has no
        row in those ``n``: all its rows in the slice come after the ``n``-th row, and its start is
        no later than any of its rows, or before the slice (newest-first); or its start is after the
        ``n``-th row or after the slice (oldest-first; a start before the slice is before the cursor).
        So the page is exact when its last trace is not past that bound; otherwise ``n`` grows (when
        the slice had more than ``n`` rows) or the slice widens.
        """
        page = q.limit + 1
        lo, hi = q.window.start_ns, q.window.end_ns
        intervals = [*plan.raw, *((d * rollups.DAY_NS, (d + 1) * rollups.DAY_NS - 1) for d in plan.days)]
        if not intervals:
            return []
        lo, hi = max(lo, min(i[0] for i in intervals)), min(hi, max(i[1] for i in intervals))  # days with spans
        after: tuple[int, str] | None = None
        if q.after is not None:
            after = (int(q.after[0]), q.after[1])
            lo, hi = (max(lo, after[0]), hi) if ascending else (lo, min(hi, after[0]))
        order = "ASC" if ascending else "DESC"
        width, n = 3600 * 1_000_000_000, 4 * page
        while lo <= hi:
            a, b = (lo, min(hi, lo + width)) if ascending else (max(lo, hi - width), hi)
            a, b = plan.widen(a, b)
            covers_all = (b >= hi) if ascending else (a <= lo)
            cparams = {**params, "limit": n}
            cursor = ""
            if after is not None:
                cursor = f"WHERE (t_start_ns, t_trace_id) {'>' if ascending else '<'} ({{c_val:Int64}}, {{c_id:String}})"
                cparams["c_val"], cparams["c_id"] = after
            source = rollups.trace_source(plan.restrict(a, b), where, cparams)
            cand = self.query(SQL_TRACE_CANDIDATES.format(source=source, cursor=cursor, order=order), cparams)
            full = len(cand) == n
            ids = list(dict.fromkeys(r["t_trace_id"] for r in cand))
            if not full and not covers_all and len(ids) < page:  # too few traces in the slice for a page
                width = max(2 * (b - a + 1), (b - a + 1) * 2 * n // max(1, len(cand)))
                continue
            if len(ids) > page:  # the candidates' starts over the whole window first: the page's ids
                keys = self._trace_keys(
                    plan, [*where, _IN_TRACES], {**params, "t_ids": ",".join(ids)}, "start_time", ascending, q.after, page
                )
                ids = [r["t_trace_id"] for r in keys]
            rows = self._trace_rows(plan, where, params, "start_time", ascending, q.after, page, ids) if ids else []
            if len(rows) == page:
                last = (int(rows[-1]["t_start_ns"]), rows[-1]["t_trace_id"])
                nth = (int(cand[-1]["t_start_ns"]), cand[-1]["t_trace_id"])
                if ascending:
                    if not full or last <= nth:
                        return rows
                elif (not full or last >= nth) and last[0] >= a:
                    return rows
            elif covers_all and not full:
                return rows  # every trace after the cursor was a candidate
            if full:
                n *= 4
            else:  # wider than the slice was (a rollup day makes it a whole day)
                width = 8 * (b - a + 1)
        return []

    def trace_spans(
        self,
        project_id: str,
        trace_id: str,
        *,
        tenant_id: str | None = None,
        span_name: str | None = None,
        after: tuple[int, str] | None = None,
        direction: Literal["up", "down"] = "down",
        limit: int = 10_000,
    ) -> tuple[list[SpanRow], bool]:
        """Spans of one trace in start-time order (``up``: backwards from ``after``); and whether more follow."""
        extra = []
        params: dict[str, Any] = {}
        if span_name is not None:
            extra.append(span_name_condition(span_name, params))
        forward = direction == "down"
        if after is not None:
            extra.append(f"(toUnixTimestamp64Nano(start_time), span_id) {'>' if forward else '<'} ({{c_val:Int64}}, {{c_id:String}})")
            params["c_val"], params["c_id"] = after
        where, wparams = self.span_filter(project_id, None, tenant_id=tenant_id, trace_id=trace_id, extra=extra)
        params.update(wparams)
        params["limit"] = limit + 1
        rows = self.query(SQL_TRACE_SPANS.format(where=where, order="ASC" if forward else "DESC"), params)
        spans = [self._span(r) for r in rows]
        if spans:
            versions = billing.SpanIndex.versions(self, project_id, trace_id)
            if versions:
                spans = [replace(s, versions=versions[s.span_id]) if s.span_id in versions else s for s in spans]
        return spans[:limit], len(spans) > limit

    def traces_of_spans(self, project_id: str, span_ids: list[str], *, tenant_id: str | None = None) -> list[str]:
        """The trace ids of the spans ``span_ids`` (hex, as stored) in the project (and tenant)."""
        if not span_ids:
            return []
        where, params = self.span_filter(
            project_id, None, tenant_id=tenant_id,
            extra=["span_id IN (SELECT arrayJoin(splitByChar(',', {s_ids:String})))"],
        )
        params["s_ids"] = ",".join(span_ids)
        rows = self.query(f"SELECT DISTINCT trace_id FROM netra_spans FINAL WHERE {where} ORDER BY trace_id", params)
        return [str(r["trace_id"]) for r in rows]

    @staticmethod
    def _span(r: dict[str, Any]) -> SpanRow:
        return SpanRow(
            project_id=r["project_id"], trace_id=r["trace_id"], span_id=r["span_id"],
            parent_span_id=r["parent_span_id"], name=r["name"], kind=r["kind"], span_type=r["span_type"],
            tenant_id=r["tenant_id"], session_id=r["session_id"], user_id=r["user_id"], service=r["service"],
            environment=r["environment"], start_ns=int(r["start_ns"]), end_ns=int(r["end_ns"]),
            duration_ns=int(r["duration_ns"]), status_code=r["status_code"], status_message=r["status_message"],
            model=r["model"], provider=r["provider"], input_tokens=int(r["input_tokens"]),
            output_tokens=int(r["output_tokens"]), cached_tokens=int(r["cached_tokens"]),
            reasoning_tokens=int(r["reasoning_tokens"]),
            cost=None if r["cost"] is None else Decimal(str(r["cost"])), cost_source=r["cost_source"],
            cost_unknown=bool(r["cost_unknown"]), has_usage=bool(r["has_usage"]), covered=bool(r["covered"]),
            attributes=r["attributes"], resource_attributes=r["resource_attributes"], events=r["events"],
            ingested_ms=int(r["ingested_ms"]), links=r.get("links") or "[]",
        )

    def count_spans(self, project_id: str | None = None) -> int:
        """Distinct spans stored (duplicates once), in one project or all."""
        if project_id is None:
            return int(self.query("SELECT count() AS n FROM netra_spans FINAL")[0]["n"])
        return int(
            self.query("SELECT count() AS n FROM netra_spans FINAL WHERE project_id = {p:String}", {"p": project_id})[0]["n"]
        )


def open_store(url: str, *, threads: int = 4, memory_limit_bytes: int | None = None) -> Store:
    """Open a store by URL: ``chdb:///abs/dir`` (embedded) or ``clickhouse[s]://user:pass@host:port/db``.
    ``memory_limit_bytes``: the embedded store's ``max_server_memory_usage`` (None: 1 GiB; 0: ClickHouse's
    default, 90% of RAM); ignored for a ClickHouse server, whose own configuration decides."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "chdb":
        path = url.split("://", 1)[1]
        if not path:
            raise StoreError("chdb:// store URL needs a folder, e.g. chdb:///home/me/.netra/data/store")
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)
        return Store(ChdbBackend(path, memory_limit_bytes=memory_limit_bytes), threads=threads)
    if scheme in ("clickhouse", "clickhouses", "http", "https"):
        if scheme in ("http", "https"):
            url = url.replace("http", "clickhouse", 1)
        return Store(ClickHouseBackend(url), threads=threads)
    raise StoreError(
        f"unknown store URL {url!r}: use chdb:///path/to/folder or clickhouse://user:password@host:8123/database"
    )
