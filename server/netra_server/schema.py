"""The store's schema, as named migrations applied in order at start (``Store.migrate``).

The same DDL runs on chDB and on a ClickHouse server. Every migration has a unique id
(``<part>-<NNNN>``); applied ids are recorded in ``netra_schema_migrations``. Other parts of the server
(alerts, dashboard) add their own tables by calling :func:`register_migration` at import time with
ids of their own prefix, e.g. ``register_migration("alerts-0001", [DDL...])``; never edit an applied
migration, add a new one.

Tables (all names start with ``netra_`` so a shared ClickHouse database stays tidy):

``netra_spans``
    One row per span. ``ReplacingMergeTree`` keyed by ``(project_id, tenant_id, start_time, trace_id,
    span_id)`` (for the reads: a tenant's rows are contiguous), and every query reads with ``FINAL``. The
    span's identity is ``(project_id, trace_id, span_id)``: the ingest path lets each identity in once
    (the first version; ``netra_span_index`` below); a row written again (a span covered later: a newer
    ``ingested_at``; the same row inserted again after a crash: the same) has the same key and replaces
    the first. Partitioned by UTC day of the span start (``core-0002``; ``core-0001`` made monthly partitions): ``FINAL`` never merges
    across partitions, past days settle into few parts, and a day is the unit of the rollups below.
    Promoted columns for everything the API filters, groups or sums on; ``cost`` is ``Decimal(18, 10)``
    USD, NULL when the price is unknown.
``netra_usage_daily``, ``netra_latency_daily``, ``netra_traces_daily``, ``netra_rollup_days``
    Rollups of whole days (``netra_server.rollups``): usage sums per project, day, tenant, user, model
    and session; exact duration quantile states per project, day, scope and tenant; per-trace summaries
    per project, day and (tenant, user, session) of the trace's spans; computed from
    ``netra_spans FINAL`` one day partition at a time. ``netra_rollup_days`` records each computation
    with a fingerprint of the day partition's parts; a query uses a day's rollup only while the
    partition still has exactly those parts (any insert, merge, TTL delete or mutation changes them),
    and reads every other day, and the cut edges of its window, from ``netra_spans FINAL``.
``netra_span_index``
    The stored identity of every span, ``(project_id, trace_id, span_id)`` (``core-0003``), for the
    ingest path (``netra_server.billing``): where the span's row is (tenant, start time), its parent,
    a fingerprint of the first version stored and of conflicting versions delivered later, whether it
    has usage and whether it is covered; or a placeholder for a parent whose descendant with usage
    arrived first. ``ReplacingMergeTree(version)``: an update is an insert of a newer version.
    ``netra_spans`` keeps its sorting key (tenant and start first, for the reads); the index ensures
    it gets one row per identity.
``netra_resources``
    The attributes of each OpenTelemetry resource (``core-0008``), once per project: a span row's
    ``resource_attributes`` holds either the resource's attributes as JSON (a resource of at most
    :data:`INLINE_RESOURCE_BYTES`, and every row written before ``core-0008``) or
    ``@resource:<id>`` (:data:`RESOURCE_REF_PREFIX`), naming a row here that was stored before the span
    was acknowledged. A resource is the same for every span a process sends (service, SDK, host), so
    the span rows leave out a quarter of their bytes (less to parse, compress and merge).
    ``ReplacingMergeTree``: a resource stored again is one row.
``netra_projects``, ``netra_api_keys``, ``netra_meta``
    Projects, hashed API keys and server-wide values (the cursor-signing secret). ``ReplacingMergeTree``
    with a version column: an update is an insert of a newer version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["COUNTED", "COUNTED_COST", "MIGRATIONS", "SPAN_COLUMNS", "SPAN_SELECT", "SPAN_TABLE", "Migration", "register_migration"]

MIGRATIONS_TABLE = "netra_schema_migrations"

CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    id String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY id
"""

#: The columns of ``netra_spans``, in order, with their ClickHouse types: the one list that the table
#: (:data:`SPANS_DDL`), the rows the receiver builds (``otlp.build_rows``, ``JSONCompactEachRow`` in
#: this order) and the store's reads follow.
SPAN_TABLE: tuple[tuple[str, str], ...] = (
    ("project_id", "LowCardinality(String)"),
    ("tenant_id", "String"),
    ("start_time", "DateTime64(9, 'UTC')"),
    ("trace_id", "String"),
    ("span_id", "String"),
    ("parent_span_id", "String"),
    ("end_time", "DateTime64(9, 'UTC')"),
    ("duration_ns", "Int64"),
    ("name", "String"),
    ("kind", "LowCardinality(String)"),
    ("span_type", "LowCardinality(String)"),
    ("session_id", "String"),
    ("user_id", "String"),
    ("service", "LowCardinality(String)"),
    ("environment", "LowCardinality(String)"),
    ("scope_name", "LowCardinality(String)"),
    ("status_code", "LowCardinality(String)"),
    ("status_message", "String"),
    ("model", "LowCardinality(String)"),
    ("provider", "LowCardinality(String)"),
    ("input_tokens", "UInt64"),
    ("output_tokens", "UInt64"),
    ("cached_tokens", "UInt64"),
    ("reasoning_tokens", "UInt64"),
    ("cost", "Nullable(Decimal(18, 10))"),
    ("cost_source", "LowCardinality(String)"),
    ("cost_unknown", "UInt8"),
    ("has_usage", "UInt8"),
    ("covered", "UInt8"),
    ("attributes", "String CODEC(ZSTD(1))"),
    ("resource_attributes", "String CODEC(ZSTD(1))"),
    ("events", "String CODEC(ZSTD(1))"),
    ("links", "String CODEC(ZSTD(1))"),
    ("ingested_at", "DateTime64(3, 'UTC')"),
)
#: The names of :data:`SPAN_TABLE`, in order.
SPAN_COLUMNS: tuple[str, ...] = tuple(name for name, _ in SPAN_TABLE)
#: How a read of whole spans selects a column (the times as integers: ``start_ns``, ``end_ns``,
#: ``ingested_ms``); the others are selected as they are.
_SPAN_READ_AS = {
    "start_time": "toUnixTimestamp64Nano(start_time) AS start_ns",
    "end_time": "toUnixTimestamp64Nano(end_time) AS end_ns",
    "ingested_at": "toUnixTimestamp64Milli(ingested_at) AS ingested_ms",
}
#: The select list of a read of whole spans (``Store.trace_spans``), from :data:`SPAN_COLUMNS`.
SPAN_SELECT: str = ", ".join(_SPAN_READ_AS.get(name, name) for name in SPAN_COLUMNS)
#: The billing rule as SQL over a ``netra_spans`` row: the span's usage counts in aggregates (it has
#: usage and no ancestor's usage covers it; ``docs/design.md``). The store, the rollups and the alerts
#: all use this one condition.
COUNTED = "(has_usage = 1 AND covered = 0)"
#: The cost a ``netra_spans`` row counts under the billing rule, as ``Decimal(38, 10)`` (0 when not
#: counted or unknown: unknown prices are counted apart, never as 0 in a shown total).
COUNTED_COST = f"if({COUNTED} AND cost IS NOT NULL, toDecimal128(assumeNotNull(cost), 10), toDecimal128(0, 10))"
#: The usage sums of a group of ``netra_spans`` rows, in the column order of ``netra_usage_daily`` and
#: ``netra_usage_live`` (``span_count`` to ``unpriced_count``): what the daily rollups and the live
#: table's backfill aggregate.
USAGE_SUMS = (
    f"count(), countIf({COUNTED}), sumIf(input_tokens, {COUNTED}), sumIf(output_tokens, {COUNTED}), "
    f"sumIf(cached_tokens, {COUNTED}), toDecimal128(ifNull(sumIf(cost, {COUNTED}), 0), 10), "
    f"countIf({COUNTED} AND cost IS NULL)"
)

SPANS_DDL = (
    "\nCREATE TABLE IF NOT EXISTS netra_spans (\n"
    + "".join(f"    {name} {ctype},\n" for name, ctype in SPAN_TABLE)
    + """    INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, tenant_id, start_time, trace_id, span_id)
"""
)

#: A span row's ``resource_attributes`` that starts with this names a row of ``netra_resources``: the
#: rest is its ``resource_id`` (32 hex digits: the first 128 bits of the SHA-256 of the attributes' JSON).
RESOURCE_REF_PREFIX = "@resource:"
#: Resources whose attributes' JSON is at most this many bytes stay in each span row (a reference
#: would save little).
INLINE_RESOURCE_BYTES = 96

RESOURCES_DDL = """
CREATE TABLE IF NOT EXISTS netra_resources (
    project_id LowCardinality(String),
    resource_id String,
    attributes String CODEC(ZSTD(1)),
    stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, resource_id)
"""

PROJECTS_DDL = """
CREATE TABLE IF NOT EXISTS netra_projects (
    project_id String,
    name String,
    organisation_id String,
    created_at DateTime64(3, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY project_id
"""

API_KEYS_DDL = """
CREATE TABLE IF NOT EXISTS netra_api_keys (
    key_id String,
    project_id String,
    key_hash String,
    name String,
    role LowCardinality(String),
    tenant_id String,
    created_at DateTime64(3, 'UTC'),
    revoked UInt8,
    revoked_at Nullable(DateTime64(3, 'UTC')),
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY key_id
"""

META_DDL = """
CREATE TABLE IF NOT EXISTS netra_meta (
    key String,
    value String,
    version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY key
"""


#: ``netra_spans`` as ``core-0002`` rebuilds it: partitioned by UTC day (``toDate32``: 1900-2299, the
#: range of accepted span start times) instead of month; same columns, key and indexes.
SPANS_DAILY_DDL = SPANS_DDL.replace("netra_spans (", "{table} (").replace(
    "PARTITION BY toYYYYMM(start_time)", "PARTITION BY toDate32(start_time)"
)

ROLLUP_DAYS_DDL = """
CREATE TABLE IF NOT EXISTS netra_rollup_days (
    day Date32,
    parts_hash UInt64,
    rollup_id UInt64,
    computed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY (day, computed_at)
"""

USAGE_DAILY_DDL = """
CREATE TABLE IF NOT EXISTS netra_usage_daily (
    project_id LowCardinality(String),
    day Date32,
    rollup_id UInt64,
    tenant_id String,
    user_id String,
    model LowCardinality(String),
    session_id String,
    span_count UInt64,
    request_count UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cached_tokens UInt64,
    cost Decimal(38, 10),
    unpriced_count UInt64
) ENGINE = MergeTree ORDER BY (project_id, tenant_id, day, rollup_id, user_id, model, session_id)
"""

LATENCY_DAILY_DDL = """
CREATE TABLE IF NOT EXISTS netra_latency_daily (
    project_id LowCardinality(String),
    scope LowCardinality(String),
    day Date32,
    rollup_id UInt64,
    tenant_id String,
    span_count UInt64,
    error_count UInt64,
    durations AggregateFunction(quantilesExact(0.5, 0.95, 0.99), Int64)
) ENGINE = MergeTree ORDER BY (project_id, scope, tenant_id, day, rollup_id)
"""

TRACES_DAILY_DDL = """
CREATE TABLE IF NOT EXISTS netra_traces_daily (
    project_id LowCardinality(String),
    tenant_id String,
    day Date32,
    rollup_id UInt64,
    trace_id String,
    user_id String,
    session_id String,
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    first_child UInt8,
    first_start DateTime64(9, 'UTC'),
    first_span_id String,
    name String,
    kind LowCardinality(String),
    service LowCardinality(String),
    environment LowCardinality(String),
    models Array(LowCardinality(String)),
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_tokens UInt64,
    cost Decimal(38, 10),
    unpriced_count UInt64,
    has_error UInt8,
    span_count UInt64,
    INDEX idx_trace trace_id TYPE bloom_filter(0.0001) GRANULARITY 1
) ENGINE = MergeTree ORDER BY (project_id, tenant_id, day, rollup_id, trace_id)
SETTINGS index_granularity = 1024
"""


SPAN_INDEX_DDL = """
CREATE TABLE IF NOT EXISTS netra_span_index (
    project_id LowCardinality(String),
    trace_id String,
    span_id String,
    parent_span_id String,
    tenant_id String,
    start_ns Int64,
    present UInt8,
    fingerprint UInt64,
    has_usage UInt8,
    covered UInt8,
    other_versions Array(UInt64),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, trace_id, span_id)
SETTINGS index_granularity = 1024
"""

#: The spans stored before ``core-0003``: one index row per identity, the first version ingested
#: (fingerprint 0: unknown; the next delivery's is adopted). Rows of one identity stored twice by the
#: old sorting key (another tenant or start time) stay as they are.
SPAN_INDEX_BACKFILL = """
INSERT INTO netra_span_index (project_id, trace_id, span_id, parent_span_id, tenant_id, start_ns, present,
    fingerprint, has_usage, covered, other_versions, version)
SELECT project_id, trace_id, span_id, argMin(parent_span_id, ingested_at), argMin(tenant_id, ingested_at),
    toUnixTimestamp64Nano(argMin(start_time, ingested_at)), 1, 0, argMin(has_usage, ingested_at), max(covered), [], 1
FROM netra_spans FINAL
GROUP BY project_id, trace_id, span_id
"""


class _Runs(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...


def partition_spans_by_day(store: _Runs) -> None:
    """Rebuild ``netra_spans`` partitioned by day (``core-0002``), keeping every row and the TTL.

    Copies the rows into a new table, swaps the names, copies again what other server processes wrote
    to the old table meanwhile (a copy of a row already there collapses like any duplicate), then
    drops the old table. Resumes an interrupted rebuild. Leaves alone a ``netra_spans`` that is not a
    ``ReplacingMergeTree`` partitioned by month (e.g. a cluster's ``Distributed`` table, whose local
    tables the operator creates: see docs/deployment.md).
    """
    def table(name: str) -> dict[str, Any] | None:
        rows = store.query(
            "SELECT engine, partition_key FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
            {"n": name},
        )
        return rows[0] if rows else None

    spans = table("netra_spans")
    if spans is None:
        return
    if spans["engine"] == "ReplacingMergeTree" and spans["partition_key"].startswith("toYYYYMM"):
        retention = store.query("SELECT value FROM netra_meta FINAL WHERE key = 'retention_days'")
        days = int(retention[0]["value"]) if retention and str(retention[0]["value"]).isdigit() else 0
        ttl = f"\nTTL toDateTime(start_time) + INTERVAL {days} DAY" if days else ""
        store.command("DROP TABLE IF EXISTS netra_spans_rebuild")  # a copy left by an interrupted rebuild
        store.command(SPANS_DAILY_DDL.format(table="netra_spans_rebuild") + ttl)
        # rows ingested from an hour before the copy on (server clocks may differ) are copied again below
        since = store.query("SELECT toString(now64(3, 'UTC') - INTERVAL 1 HOUR) AS t")[0]["t"]
        store.command("INSERT INTO netra_spans_rebuild SELECT * FROM netra_spans")
        store.command("RENAME TABLE netra_spans TO netra_spans_monthly, netra_spans_rebuild TO netra_spans")
        tail = "WHERE ingested_at >= toDateTime64({since:String}, 3, 'UTC')"
    elif table("netra_spans_monthly") is not None:
        since, tail = "", ""  # a rebuild stopped after the swap: copy everything again
    else:
        return
    # what other processes wrote to the old table during the copy (copies of rows already there collapse)
    store.command(f"INSERT INTO netra_spans SELECT * FROM netra_spans_monthly {tail}", {"since": since} if tail else None)
    store.command("DROP TABLE netra_spans_monthly")


#: ``netra_spans`` parts smaller than this (uncompressed bytes) are written in ClickHouse's Compact format:
#: all columns in one data file, instead of two files per column (Wide, ClickHouse's default from 10 MiB
#: on). Every journal flush writes a part of about 16 MiB and merges rewrite them: as Wide parts, each
#: costs some 90 file creations and as many deletions at its merge, and creating files where many were
#: just deleted is slow on ext4 (its inode allocator skips recently freed inodes): in one profile of
#: ``bench/bench_server.py`` the part-writing thread spent 38% of its time in ext4's inode allocation.
#: Parts merged past this size (a few hundred thousand spans) are Wide, as large parts read best.
SPANS_WIDE_PART_BYTES = 256 * 1024 * 1024


def _set_merge_tree_setting(store: _Runs, tables: tuple[str, ...], setting: str, value: int) -> None:
    """``ALTER TABLE ... MODIFY SETTING setting = value`` on those of ``tables`` that are MergeTree tables
    (a cluster's ``Distributed`` tables have no parts: they are left alone)."""
    names = ", ".join(f"'{t}'" for t in tables)
    rows = store.query(f"SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name IN ({names})")
    for row in rows:
        if str(row["engine"]).endswith("MergeTree"):
            store.command(f"ALTER TABLE {row['name']} MODIFY SETTING {setting} = {int(value)}")


def compact_span_parts(store: _Runs) -> None:
    """``core-0006``: give ``netra_spans`` the Compact format up to :data:`SPANS_WIDE_PART_BYTES`. Leaves
    alone a ``netra_spans`` that is not a MergeTree table (a cluster's ``Distributed`` table)."""
    _set_merge_tree_setting(store, ("netra_spans",), "min_bytes_for_wide_part", SPANS_WIDE_PART_BYTES)


#: ClickHouse's merge selector joins parts whose sizes are within this ratio (its ``merge_selector_base``,
#: 5 by default). The tables every journal flush writes to (:data:`FLUSHED_TABLES`) get a new part
#: per flush (about one a second under load) and keep about a row per span (the live usage rows are per
#: minute, tenant, user, model and session). With base 10 a row is merged about log(5)/log(10) = 0.7 as
#: often over its life, for more parts alive between merges. ``bench/bench_flush.py --compare merges``
#: (15 flushes of 20,480 spans): merges rewrote 2.57 rows per span against 5.48, the flush path took
#: 0.91x the CPU, and at most 12 span parts were active after a flush against 9.
MERGE_SELECTOR_BASE = 10
FLUSHED_TABLES = ("netra_spans", "netra_span_index", "netra_usage_live")


def fewer_merges(store: _Runs) -> None:
    """``core-0007``: :data:`MERGE_SELECTOR_BASE` on the MergeTree tables of :data:`FLUSHED_TABLES`
    (not on a cluster's ``Distributed`` table, nor on a ClickHouse without the setting)."""
    if store.query("SELECT name FROM system.merge_tree_settings WHERE name = 'merge_selector_base'"):
        _set_merge_tree_setting(store, FLUSHED_TABLES, "merge_selector_base", MERGE_SELECTOR_BASE)


def span_index_retention(store: _Runs, days: int | None = None) -> None:
    """Give ``netra_span_index`` the retention TTL of ``netra_spans`` (``days``, or the one set)."""
    if days is None:
        rows = store.query("SELECT value FROM netra_meta FINAL WHERE key = 'retention_days'")
        days = int(rows[0]["value"]) if rows and str(rows[0]["value"]).isdigit() else 0
    if days:
        store.command(
            f"ALTER TABLE netra_span_index MODIFY TTL toDateTime(intDiv(start_ns, 1000000000)) + INTERVAL {int(days)} DAY"
        )
        return
    rows = store.query(
        "SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = 'netra_span_index'"
    )
    if rows and " TTL " in str(rows[0]["q"]):
        store.command("ALTER TABLE netra_span_index REMOVE TTL")


@dataclass(frozen=True)
class Migration:
    id: str
    statements: tuple[str, ...]
    #: Run after the statements, with the store (for what DDL alone cannot do, e.g. copying rows).
    run: Callable[[Any], None] | None = None


#: Usage per minute of the spans being written, kept at insert (``netra_server.live_usage``).
LIVE_USAGE_DDL = """
CREATE TABLE IF NOT EXISTS netra_usage_live (
    project_id LowCardinality(String),
    tenant_id String,
    epoch UInt64,
    day Date32,
    minute Int64,
    user_id String,
    model LowCardinality(String),
    session_id String,
    span_count Int64,
    request_count Int64,
    input_tokens Int64,
    output_tokens Int64,
    cached_tokens Int64,
    cost Decimal(38, 10),
    unpriced_count Int64
) ENGINE = SummingMergeTree
PARTITION BY day
ORDER BY (project_id, tenant_id, epoch, minute, user_id, model, session_id)
"""

#: Adds the rows of a span INSERT tagged ``netra-live:<epoch>:<since ns>:<until ns>`` (its ``log_comment``,
#: ``live_usage.LiveUsage.tag``) to ``netra_usage_live``: the spans starting in ``[since, until)``, summed
#: per minute as ``netra_usage_daily`` sums a day. INSERTs without the tag add nothing.
LIVE_USAGE_MV_DDL = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS netra_usage_live_mv TO netra_usage_live AS
SELECT
    project_id, tenant_id, epoch, day, minute, user_id, model, session_id,
    toInt64(count()) AS span_count, toInt64(sum(l_counted)) AS request_count, toInt64(sum(l_input)) AS input_tokens,
    toInt64(sum(l_output)) AS output_tokens, toInt64(sum(l_cached)) AS cached_tokens,
    toDecimal128(sum(l_cost), 10) AS cost, toInt64(sum(l_unpriced)) AS unpriced_count
FROM (
    SELECT
        project_id, tenant_id, toUInt64OrZero(tag[2]) AS epoch, toDate32(start_time) AS day,
        intDiv(toUnixTimestamp64Nano(start_time), 60000000000) AS minute, user_id, model, session_id,
        toUInt8({COUNTED}) AS l_counted, if(l_counted, input_tokens, 0) AS l_input,
        if(l_counted, output_tokens, 0) AS l_output, if(l_counted, cached_tokens, 0) AS l_cached,
        {COUNTED_COST} AS l_cost,
        toUInt8(l_counted AND cost IS NULL) AS l_unpriced
    FROM netra_spans
    WHERE (splitByChar(':', getSetting('log_comment')) AS tag)[1] = 'netra-live'
        AND toUnixTimestamp64Nano(start_time) >= toInt64OrZero(tag[3])
        AND toUnixTimestamp64Nano(start_time) < toInt64OrZero(tag[4])
)
GROUP BY project_id, tenant_id, epoch, day, minute, user_id, model, session_id
"""

MIGRATIONS: list[Migration] = [
    Migration("core-0001", (SPANS_DDL, PROJECTS_DDL, API_KEYS_DDL, META_DDL)),
    Migration(
        "core-0002", (ROLLUP_DAYS_DDL, USAGE_DAILY_DDL, LATENCY_DAILY_DDL, TRACES_DAILY_DDL), partition_spans_by_day
    ),
    Migration("core-0003", (SPAN_INDEX_DDL, SPAN_INDEX_BACKFILL), lambda store: span_index_retention(store)),
    Migration("core-0004", (LIVE_USAGE_DDL,)),
    # the view is created only where the table is kept (``Store.start_live_usage``): every span INSERT runs it
    Migration("core-0005", ("DROP VIEW IF EXISTS netra_usage_live_mv",)),
    Migration("core-0006", (), compact_span_parts),
    Migration("core-0007", (), fewer_merges),
    Migration("core-0008", (RESOURCES_DDL,)),
]


def register_migration(migration_id: str, statements: list[str] | tuple[str, ...]) -> None:
    """Add a migration (idempotent DDL, e.g. ``CREATE TABLE IF NOT EXISTS``) applied at the next start.

    Call it at import time of your module; the server imports ``netra_server.alerts`` and
    ``netra_server.dashboard`` (when present) before migrating.
    """
    if any(m.id == migration_id for m in MIGRATIONS):
        return
    MIGRATIONS.append(Migration(migration_id, tuple(statements)))
