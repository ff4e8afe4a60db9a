"""The store's schema, as named migrations applied in order at start (``Store.migrate``).

The same DDL runs on chDB and on a ClickHouse server. Every migration has a unique id
(``<part>-<NNNN>``); applied ids are recorded in ``netra_schema_migrations``. Other parts of the server
(alerts, dashboard) add their own tables by calling :func:`register_migration` at import time with
ids of their own prefix, e.g. ``register_migration("alerts-0001", [DDL...])``; never edit an applied
migration, add a new one.

Tables (all names start with ``netra_`` so a shared ClickHouse database stays tidy):

``netra_spans``
    One row per span. ``ReplacingMergeTree`` keyed by ``(project_id, tenant_id, start_time, trace_id,
    span_id)``: a span delivered twice has the same key, and every query reads with ``FINAL``, so it is
    stored and counted once (exact, also with several server processes writing). Partitioned by month
    of the span start, so ``FINAL`` never merges across partitions. Promoted columns for everything the
    API filters, groups or sums on; ``cost`` is ``Decimal(18, 10)`` USD, NULL when the price is unknown.
``netra_projects``, ``netra_api_keys``, ``netra_meta``
    Projects, hashed API keys and server-wide values (the cursor-signing secret). ``ReplacingMergeTree``
    with a version column: an update is an insert of a newer version.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "register_migration"]

MIGRATIONS_TABLE = "netra_schema_migrations"

CREATE_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    id String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY id
"""

SPANS_DDL = """
CREATE TABLE IF NOT EXISTS netra_spans (
    project_id LowCardinality(String),
    tenant_id String,
    start_time DateTime64(9, 'UTC'),
    trace_id String,
    span_id String,
    parent_span_id String,
    end_time DateTime64(9, 'UTC'),
    duration_ns Int64,
    name String,
    kind LowCardinality(String),
    span_type LowCardinality(String),
    session_id String,
    user_id String,
    service LowCardinality(String),
    environment LowCardinality(String),
    scope_name LowCardinality(String),
    status_code LowCardinality(String),
    status_message String,
    model LowCardinality(String),
    provider LowCardinality(String),
    input_tokens UInt64,
    output_tokens UInt64,
    cached_tokens UInt64,
    reasoning_tokens UInt64,
    cost Nullable(Decimal(18, 10)),
    cost_source LowCardinality(String),
    cost_unknown UInt8,
    has_usage UInt8,
    covered UInt8,
    attributes String CODEC(ZSTD(1)),
    resource_attributes String CODEC(ZSTD(1)),
    events String CODEC(ZSTD(1)),
    links String CODEC(ZSTD(1)),
    ingested_at DateTime64(3, 'UTC'),
    INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, tenant_id, start_time, trace_id, span_id)
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


@dataclass(frozen=True)
class Migration:
    id: str
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = [
    Migration("core-0001", (SPANS_DDL, PROJECTS_DDL, API_KEYS_DDL, META_DDL)),
]


def register_migration(migration_id: str, statements: list[str] | tuple[str, ...]) -> None:
    """Add a migration (idempotent DDL, e.g. ``CREATE TABLE IF NOT EXISTS``) applied at the next start.

    Call it at import time of your module; the server imports ``netra_server.alerts`` and
    ``netra_server.dashboard`` (when present) before migrating.
    """
    if any(m.id == migration_id for m in MIGRATIONS):
        return
    MIGRATIONS.append(Migration(migration_id, tuple(statements)))
