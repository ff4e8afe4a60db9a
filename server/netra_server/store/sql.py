"""Every SQL statement the store runs (:mod:`netra_server.store`'s reads and writes), and the fragments
its reads are built from.

Statements of other modules live with them: the tables and migrations in :mod:`netra_server.schema`,
the daily rollups (and the sources that read whole days from them) in :mod:`netra_server.rollups`,
span identity in :mod:`netra_server.billing`. Parameters are ClickHouse's server-side ``{name:Type}``;
``{where}``-style fields (single braces in a plain string, doubled in an f-string) are filled with
``str.format`` from conditions built here or in :mod:`netra_server.store.base`, never from input.
"""

from __future__ import annotations

from typing import Any

from netra_server import schema

__all__ = [
    "COUNTED",
    "GROUP_KEYS",
    "IN_TRACES",
    "ROLLUP_GROUP_KEYS",
    "SPAN_TYPE_SQL",
    "SQL_APPLIED_MIGRATIONS",
    "SQL_COUNT_SPANS",
    "SQL_COUNT_SPANS_OF_PROJECT",
    "SQL_GET_KEYS",
    "SQL_GET_META",
    "SQL_GET_PROJECTS",
    "SQL_INSERT_KEY",
    "SQL_INSERT_PROJECT",
    "SQL_LATENCY",
    "SQL_LIST_TRACES",
    "SQL_RECORD_MIGRATION",
    "SQL_REMOVE_TTL",
    "SQL_SET_META",
    "SQL_SET_TTL",
    "SQL_TRACES_OF_SPANS",
    "SQL_TRACE_CANDIDATES",
    "SQL_TRACE_SPANS",
    "SQL_TRACE_TYPES",
    "SQL_USAGE_SUMMARY",
    "SQL_USAGE_SUMMARY_ROLLUP",
    "SQL_USAGE_TOTALS",
    "TOTALS_COLUMNS",
    "TRACE_KEYS",
    "TRACE_SORT",
    "WINDOW_SQL",
    "span_name_condition",
]

#: The billing rule as SQL (defined with the table, :data:`netra_server.schema.COUNTED`).
COUNTED = schema.COUNTED

#: :func:`~netra_server.store.records.span_type_name` as SQL over a ``netra_spans`` row.
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

#: The window (``Window.params``) on span start.
WINDOW_SQL = (
    "start_time >= fromUnixTimestamp64Nano({w_start:Int64}, 'UTC') "
    "AND start_time <= fromUnixTimestamp64Nano({w_end:Int64}, 'UTC')"
)

#: Totals under the billing rule over ``netra_spans`` rows (the ``u_*`` columns of ``records.totals_of``).
TOTALS_COLUMNS = f"""
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

#: Grouped totals over ``netra_spans`` (by hour or minute: finer than the rollups).
SQL_USAGE_SUMMARY = f"""
SELECT {{key}} AS group_key, {TOTALS_COLUMNS}
FROM netra_spans FINAL
WHERE {{where}}
GROUP BY group_key
ORDER BY {{order}}
LIMIT {{{{limit:UInt32}}}}
"""

#: ``usage_summary`` groups over ``netra_spans`` rows.
GROUP_KEYS: dict[str, str] = {
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

#: ``usage_summary`` groups over ``rollups.usage_source`` rows (no finer than a day).
ROLLUP_GROUP_KEYS: dict[str, str] = {
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
#: (``rollups.TRACE_COLUMNS``), or only the trace id and the sort key (:data:`TRACE_KEYS`).
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
TRACE_KEYS: dict[str, str] = {
    "start_time": "toUnixTimestamp64Nano(min(x_start)) AS t_start_ns",
    "latency": "toUnixTimestamp64Nano(max(x_end)) - toUnixTimestamp64Nano(min(x_start)) AS t_latency_ns",
    "tokens": "sum(x_prompt) + sum(x_completion) AS t_total_tokens",
    "cost": "sum(x_cost) AS t_total_cost",
}

#: Trace ids (hex, so a comma never occurs in one) as one string parameter.
IN_TRACES = "trace_id IN (SELECT arrayJoin(splitByChar(',', {t_ids:String})))"

#: A trace listing's order and its cursor.
TRACE_SORT: dict[str, tuple[str, str]] = {
    # sort field -> (expression, cursor parameter as SQL)
    "start_time": ("t_start_ns", "{c_val:Int64}"),
    "latency": ("t_latency_ns", "{c_val:Int64}"),
    "tokens": ("t_total_tokens", "{c_val:UInt64}"),
    "cost": ("t_total_cost", "toDecimal128({c_val:String}, 10)"),
}

#: The spans of a trace (``schema.SPAN_SELECT`` columns, read by ``records.span_of``) in start order.
SQL_TRACE_SPANS = f"""
SELECT {schema.SPAN_SELECT}
FROM netra_spans FINAL
WHERE {{where}}
ORDER BY start_ns {{order}}, span_id {{order}}
LIMIT {{{{limit:UInt32}}}}
"""

#: The attributes of resources of a project (``ids``: resource ids joined by commas).
SQL_RESOURCES = """
SELECT resource_id, attributes FROM netra_resources FINAL
WHERE project_id = {p:String} AND resource_id IN (SELECT arrayJoin(splitByChar(',', {ids:String})))
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

#: Totals of ``rollups.usage_source`` rows (``{totals}``: ``rollups.usage_totals_columns``).
SQL_USAGE_TOTALS = "SELECT {totals} FROM ({source})"

#: Trace ids of spans (their ids as one ``s_ids`` string parameter).
SQL_TRACES_OF_SPANS = "SELECT DISTINCT trace_id FROM netra_spans FINAL WHERE {where} ORDER BY trace_id"

SQL_COUNT_SPANS = "SELECT count() AS n FROM netra_spans FINAL"
SQL_COUNT_SPANS_OF_PROJECT = "SELECT count() AS n FROM netra_spans FINAL WHERE project_id = {p:String}"

SQL_APPLIED_MIGRATIONS = f"SELECT id FROM {schema.MIGRATIONS_TABLE} FINAL"
SQL_RECORD_MIGRATION = f"INSERT INTO {schema.MIGRATIONS_TABLE} (id) VALUES ({{id:String}})"

#: The retention TTL of ``netra_spans`` (``{days}``: an int the store formats in).
SQL_SET_TTL = "ALTER TABLE netra_spans MODIFY TTL toDateTime(start_time) + INTERVAL {days} DAY"
SQL_REMOVE_TTL = "ALTER TABLE netra_spans REMOVE TTL"


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
