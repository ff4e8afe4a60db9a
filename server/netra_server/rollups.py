"""Rollups of whole days: exact usage and latency aggregates without reading every span.

``netra_spans`` is partitioned by UTC day. For a day whose partition has *settled* (no new part for
a while), :func:`refresh` computes from ``netra_spans FINAL`` (duplicates once, the billing rule as
everywhere else):

* ``netra_usage_daily``: per project, day, tenant, user, model and session, the span count, the
  counted spans (``request_count``), their tokens, known cost (``Decimal(38, 10)``) and unpriced count;
* ``netra_latency_daily``: per project, scope (``root``, ``llm``, ``all``), day and tenant, the span
  and error counts and the ``quantilesExact`` state of the durations (every duration, so merged
  percentiles stay exact);
* ``netra_traces_daily``: per project, day, trace and (tenant, user, session) of its spans, what a
  trace summary aggregates (first and last times, the root-first span's name, models, counted tokens
  and cost, errors, span count), so trace lists group rows per trace instead of spans;

then records the computation in ``netra_rollup_days`` with a fingerprint of the partition: a hash of
the names of its active parts. Parts are immutable and every change to a partition (an insert, a
merge, a TTL delete, a mutation) replaces or adds parts, so a day's rollup is **valid exactly while
the partition has the same part names** as when the rollup was computed. The fingerprint is read
before the rollup reads the spans: a part that lands in between changes the fingerprint, so that
rollup is never used.

A query (:func:`plan`) splits its window into whole days with a valid rollup, read from the rollup
tables, and everything else (the cut edges of the window, days not rolled up yet, the day being
written), read from ``netra_spans FINAL``; both halves go into one ``UNION ALL`` and are aggregated
together (sums add; distinct sessions and percentiles merge from their sets/states). A span and its
duplicates have the same start time, so they are always on the same side: nothing is counted twice.

Old computations of a day stay in the tables (a query may still be reading them) and are deleted by a
later :func:`refresh` an hour after a newer one replaced them.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from netra_server.live_usage import LiveRegion, live_select
from netra_server.schema import COUNTED, COUNTED_COST, USAGE_SUMS

__all__ = ["DAY_NS", "Plan", "plan", "refresh", "supported"]

log = logging.getLogger("netra_server.rollups")

DAY_NS = 86_400 * 1_000_000_000
_EPOCH = date(1970, 1, 1)
#: Superseded computations are deleted this long after their successor (queries may still read them).
GC_GRACE_SECONDS = 3600


class _Runs(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...


def day_str(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


def day_num(text: str) -> int:
    return (date.fromisoformat(text) - _EPOCH).days


def supported(runner: _Runs) -> bool:
    """Whether the store can use rollups: ``netra_spans`` is a local ``ReplacingMergeTree`` partitioned
    by day (not, e.g., a cluster's ``Distributed`` table, whose parts this process cannot see)."""
    rows = runner.query(
        "SELECT engine, partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'netra_spans'"
    )
    return bool(rows) and rows[0]["engine"] == "ReplacingMergeTree" and rows[0]["partition_key"] == "toDate32(start_time)"


# --------------------------------------------------------------------------------------------------
# Planning a read


@dataclass(frozen=True)
class Plan:
    """How a window is read: ``days`` (day number since 1970-01-01 -> rollup id) from the rollups,
    ``raw`` (inclusive nanosecond intervals) from ``netra_spans FINAL``, ``live`` (inclusive intervals
    of whole minutes, usage reads only) from ``netra_usage_live`` rows of ``region``'s epoch."""

    days: dict[int, int]
    raw: tuple[tuple[int, int], ...]
    live: tuple[tuple[int, int], ...] = ()
    region: LiveRegion | None = None

    @staticmethod
    def all_raw(start_ns: int, end_ns: int) -> Plan:
        return Plan({}, ((start_ns, end_ns),) if start_ns <= end_ns else ())

    def restrict(self, start_ns: int, end_ns: int) -> Plan:
        """The part of this plan inside ``[start_ns, end_ns]`` (a rollup day is kept whole when it
        overlaps: callers widen their range to day boundaries first, see :meth:`widen`). Not for a
        plan with live intervals."""
        assert not self.live, "a plan with live intervals is not restricted"
        days = {d: r for d, r in self.days.items() if d * DAY_NS <= end_ns and (d + 1) * DAY_NS - 1 >= start_ns}
        raw = tuple((max(a, start_ns), min(b, end_ns)) for a, b in self.raw if a <= end_ns and b >= start_ns)
        return Plan(days, raw)

    def widen(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """``[start_ns, end_ns]`` widened to the bounds of the rollup days it cuts."""
        for d in self.days:
            a, b = d * DAY_NS, (d + 1) * DAY_NS - 1
            if a < start_ns <= b:
                start_ns = a
            if a <= end_ns < b:
                end_ns = b
        return start_ns, end_ns

    def day_ranges(self) -> list[tuple[int, int]]:
        """The rollup days as runs of consecutive days."""
        out: list[tuple[int, int]] = []
        for d in sorted(self.days):
            if out and out[-1][1] == d - 1:
                out[-1] = (out[-1][0], d)
            else:
                out.append((d, d))
        return out

    def rollup_where(self, params: dict[str, Any]) -> str:
        """SQL condition on a rollup table's ``day`` and ``rollup_id`` (adds its parameters)."""
        if not self.days:
            return "0"
        ranges = []
        for i, (a, b) in enumerate(self.day_ranges()):
            params[f"d{i}_a"], params[f"d{i}_b"] = day_str(a), day_str(b)
            ranges.append(f"(day >= {{d{i}_a:Date32}} AND day <= {{d{i}_b:Date32}})")
        # an array parameter is spelled differently by chDB and clickhouse-connect: a joined string
        params["r_ids"] = ",".join(str(r) for r in sorted(self.days.values()))
        return (
            f"({' OR '.join(ranges)}) "
            "AND rollup_id IN (SELECT toUInt64(arrayJoin(splitByChar(',', {r_ids:String}))))"
        )

    def raw_where(self, params: dict[str, Any]) -> str:
        """SQL condition on ``netra_spans.start_time`` for the raw intervals (adds its parameters)."""
        if not self.raw:
            return "0"
        parts = []
        for i, (a, b) in enumerate(self.raw):
            params[f"r{i}_a"], params[f"r{i}_b"] = a, b
            parts.append(
                f"(start_time >= fromUnixTimestamp64Nano({{r{i}_a:Int64}}, 'UTC') "
                f"AND start_time <= fromUnixTimestamp64Nano({{r{i}_b:Int64}}, 'UTC'))"
            )
        return f"({' OR '.join(parts)})"


#: The day partitions of ``netra_spans`` in a range of days with their fingerprints (``rollup_id`` 0),
#: and the latest rollup computation of each day in the range with the fingerprint it saw.
SQL_DAYS = """
SELECT 'partition' AS what, toString(toDate32(partition)) AS day,
    sipHash64(arrayStringConcat(arraySort(groupArray(name)), ',')) AS parts_hash, toUInt64(0) AS rollup_id
FROM system.parts
WHERE database = currentDatabase() AND table = 'netra_spans' AND active
GROUP BY partition
HAVING toDate32(partition) >= {v_first:Date32} AND toDate32(partition) <= {v_last:Date32}
UNION ALL
SELECT 'rollup', toString(day), argMax(parts_hash, computed_at), argMax(rollup_id, computed_at)
FROM netra_rollup_days
WHERE day >= {v_first:Date32} AND day <= {v_last:Date32}
GROUP BY day
"""


def plan(
    runner: _Runs, start_ns: int, end_ns: int, *, use_rollups: bool = True, live: LiveRegion | None = None
) -> Plan:
    """Split ``[start_ns, end_ns]`` into whole days with a valid rollup and raw intervals; days
    without a partition (no spans) are left out. ``use_rollups=False``: every day with spans raw.
    ``live``: the whole minutes of what is not rolled up that the live usage table holds are read
    from it (``netra_server.live_usage``; usage reads only)."""
    if start_ns > end_ns:
        return Plan({}, ())
    first, last = start_ns // DAY_NS, end_ns // DAY_NS
    rows = runner.query(SQL_DAYS, {"v_first": day_str(first), "v_last": day_str(last)})
    computed = {r["day"]: r for r in rows if r["what"] == "rollup"}
    days: dict[int, int] = {}
    raw: list[tuple[int, int]] = []
    live_parts: list[tuple[int, int]] = []
    for r in sorted((r for r in rows if r["what"] == "partition"), key=lambda r: r["day"]):
        d = day_num(r["day"])
        a, b = d * DAY_NS, (d + 1) * DAY_NS - 1
        rollup = computed.get(r["day"])
        if use_rollups and rollup is not None and rollup["parts_hash"] == r["parts_hash"] and start_ns <= a and b <= end_ns:
            days[d] = int(rollup["rollup_id"])
            continue
        a, b = max(a, start_ns), min(b, end_ns)
        pieces = [(a, b)]
        if live is not None:
            pieces, minutes = live.split(a, b)
            if minutes is not None:
                live_parts.append(minutes)
        for a, b in pieces:
            if raw and raw[-1][1] + 1 == a:
                raw[-1] = (raw[-1][0], b)
            else:
                raw.append((a, b))
    return Plan(days, tuple(raw), tuple(live_parts), live if live_parts else None)


# --------------------------------------------------------------------------------------------------
# The reads: one UNION ALL of rollup rows and span rows, aggregated by the caller


def usage_source(plan: Plan, where: list[str], params: dict[str, Any], *, counted_only: bool) -> str:
    """Rows ``(r_tenant, r_user, r_model, r_session, r_day, r_spans, r_requests, r_input, r_output,
    r_cached, r_cost, r_unpriced)`` covering the plan's window: rollup rows of its days, one row per
    span (``FINAL``) of its raw intervals, live usage rows (summed per group) of its live intervals. ``where``: conditions on columns both tables have
    (``project_id``, ``tenant_id``, ``user_id``, ``session_id``). ``counted_only``: only counted spans
    (rollup rows with counted spans; their ``r_spans`` still counts every span)."""
    selects = []
    if plan.days or not (plan.raw or plan.live):  # (an empty plan: no rows, the same columns)
        cond = [*where, plan.rollup_where(params)]
        if counted_only:
            cond.append("request_count > 0")
        selects.append(
            "SELECT tenant_id AS r_tenant, user_id AS r_user, model AS r_model, session_id AS r_session, "
            "day AS r_day, span_count AS r_spans, request_count AS r_requests, input_tokens AS r_input, "
            "output_tokens AS r_output, cached_tokens AS r_cached, cost AS r_cost, unpriced_count AS r_unpriced "
            f"FROM netra_usage_daily WHERE {' AND '.join(cond)}"
        )
    if plan.raw:
        cond = [*where, plan.raw_where(params)]
        if counted_only:
            cond.append(COUNTED)
        selects.append(
            "SELECT tenant_id AS r_tenant, user_id AS r_user, model AS r_model, session_id AS r_session, "
            f"toDate32(start_time) AS r_day, toUInt64(1) AS r_spans, toUInt64({COUNTED}) AS r_requests, "
            f"if({COUNTED}, input_tokens, 0) AS r_input, if({COUNTED}, output_tokens, 0) AS r_output, "
            f"if({COUNTED}, cached_tokens, 0) AS r_cached, "
            f"{COUNTED_COST} AS r_cost, "
            f"toUInt64({COUNTED} AND cost IS NULL) AS r_unpriced "
            f"FROM netra_spans FINAL WHERE {' AND '.join(cond)}"
        )
    if plan.live and plan.region is not None:
        selects.append(live_select(plan.region, list(plan.live), where, params, counted_only=counted_only))
    return "\nUNION ALL\n".join(selects)


#: Totals over :func:`usage_source` rows (the ``u_*`` columns of ``store.records.totals_of``).
def usage_totals_columns(*, counted_only: bool) -> str:
    spans = "sum(r_requests)" if counted_only else "sum(r_spans)"
    return f"""
    sum(r_requests) AS u_request_count,
    sum(r_input + r_output) AS u_token_count,
    sum(r_input) AS u_input_tokens,
    sum(r_output) AS u_output_tokens,
    sum(r_cached) AS u_cached_tokens,
    sum(r_cost) AS u_total_cost,
    sum(r_unpriced) AS u_unpriced_count,
    uniqExactIf(r_session, r_session != '') AS u_session_count,
    {spans} AS u_span_count
"""


#: ``netra_latency_daily.scope`` -> the spans it covers.
LATENCY_SCOPES: dict[str, str] = {"root": "parent_span_id = ''", "llm": f"{COUNTED} AND model != ''", "all": "1"}


def latency_source(plan: Plan, scope: str, where: list[str], params: dict[str, Any]) -> str:
    """Rows ``(l_tenant, l_spans, l_errors, l_q)``: ``l_q`` a ``quantilesExact(0.5, 0.95, 0.99)`` state
    of durations; rollup rows of the plan's days, one row per tenant of its raw intervals."""
    selects = []
    if plan.days or not plan.raw:  # (an empty plan: no rows, the same columns)
        params["l_scope"] = scope
        cond = [*where, "scope = {l_scope:String}", plan.rollup_where(params)]
        selects.append(
            "SELECT tenant_id AS l_tenant, span_count AS l_spans, error_count AS l_errors, durations AS l_q "
            f"FROM netra_latency_daily WHERE {' AND '.join(cond)}"
        )
    if plan.raw:
        cond = [*where, plan.raw_where(params), LATENCY_SCOPES[scope]]
        selects.append(
            "SELECT tenant_id AS l_tenant, count() AS l_spans, countIf(status_code = 'ERROR') AS l_errors, "
            "quantilesExactState(0.5, 0.95, 0.99)(duration_ns) AS l_q "
            f"FROM netra_spans FINAL WHERE {' AND '.join(cond)} GROUP BY tenant_id"
        )
    return "\nUNION ALL\n".join(selects)


#: Per trace over :func:`trace_source` rows: the ``t_*`` columns of ``store.TraceSummary``.
TRACE_COLUMNS = """
    x_trace AS t_trace_id,
    argMin(x_name, (x_first_child, x_first_start, x_first_span)) AS t_name,
    argMin(x_kind, (x_first_child, x_first_start, x_first_span)) AS t_kind,
    argMin(x_service, (x_first_child, x_first_start, x_first_span)) AS t_service,
    toUnixTimestamp64Nano(min(x_start)) AS t_start_ns,
    toUnixTimestamp64Nano(max(x_end)) AS t_end_ns,
    t_end_ns - t_start_ns AS t_latency_ns,
    anyIf(x_session, x_session != '') AS t_session_id,
    anyIf(x_tenant, x_tenant != '') AS t_tenant_id,
    anyIf(x_user, x_user != '') AS t_user_id,
    anyIf(x_environment, x_environment != '') AS t_environment,
    arraySort(groupUniqArrayArray(x_models)) AS t_models,
    sum(x_prompt) AS t_prompt_tokens,
    sum(x_completion) AS t_completion_tokens,
    sum(x_cached) AS t_cached_tokens,
    t_prompt_tokens + t_completion_tokens AS t_total_tokens,
    sum(x_cost) AS t_total_cost,
    sum(x_unpriced) AS t_unpriced_count,
    max(x_error) AS t_has_error,
    sum(x_spans) AS t_span_count
"""


def trace_source(plan: Plan, where: list[str], params: dict[str, Any]) -> str:
    """Rows ``x_*`` (per trace and day from the rollups, per span from the raw intervals) that
    :data:`TRACE_COLUMNS` aggregates per trace. ``where``: conditions on columns both tables have
    (``project_id``, ``tenant_id``, ``user_id``, ``session_id``, ``trace_id``)."""
    selects = []
    if plan.days or not plan.raw:  # (an empty plan: no rows, the same columns)
        cond = [*where, plan.rollup_where(params)]
        selects.append(
            "SELECT trace_id AS x_trace, tenant_id AS x_tenant, user_id AS x_user, session_id AS x_session, "
            "start_time AS x_start, end_time AS x_end, first_child AS x_first_child, first_start AS x_first_start, "
            "first_span_id AS x_first_span, name AS x_name, kind AS x_kind, service AS x_service, "
            "environment AS x_environment, models AS x_models, prompt_tokens AS x_prompt, "
            "completion_tokens AS x_completion, cached_tokens AS x_cached, cost AS x_cost, "
            "unpriced_count AS x_unpriced, has_error AS x_error, span_count AS x_spans "
            f"FROM netra_traces_daily WHERE {' AND '.join(cond)}"
        )
    if plan.raw:
        cond = [*where, plan.raw_where(params)]
        selects.append(
            "SELECT trace_id AS x_trace, tenant_id AS x_tenant, user_id AS x_user, session_id AS x_session, "
            "start_time AS x_start, end_time AS x_end, toUInt8(parent_span_id != '') AS x_first_child, "
            "start_time AS x_first_start, span_id AS x_first_span, name AS x_name, kind AS x_kind, "
            "service AS x_service, environment AS x_environment, "
            "if(model != '', [model], CAST([], 'Array(LowCardinality(String))')) AS x_models, "
            f"if({COUNTED}, input_tokens, 0) AS x_prompt, if({COUNTED}, output_tokens, 0) AS x_completion, "
            f"if({COUNTED}, cached_tokens, 0) AS x_cached, "
            f"{COUNTED_COST} AS x_cost, "
            f"toUInt64({COUNTED} AND cost IS NULL) AS x_unpriced, toUInt8(status_code = 'ERROR') AS x_error, "
            "toUInt64(1) AS x_spans "
            f"FROM netra_spans FINAL WHERE {' AND '.join(cond)}"
        )
    return "\nUNION ALL\n".join(selects)


# --------------------------------------------------------------------------------------------------
# Computing rollups

SQL_PARTITIONS = """
SELECT
    toString(toDate32(partition)) AS day,
    sipHash64(arrayStringConcat(arraySort(groupArray(name)), ',')) AS parts_hash,
    dateDiff('second', max(modification_time), now()) AS idle_s
FROM system.parts
WHERE database = currentDatabase() AND table = 'netra_spans' AND active
GROUP BY partition
"""

SQL_COMPUTATIONS = """
SELECT toString(day) AS day, rollup_id, parts_hash, dateDiff('second', computed_at, now64(3)) AS age_s
FROM netra_rollup_days
ORDER BY day, computed_at
"""

_DAY_WHERE = (
    "start_time >= fromUnixTimestamp64Nano({c_start:Int64}, 'UTC') "
    "AND start_time <= fromUnixTimestamp64Nano({c_end:Int64}, 'UTC')"
)

SQL_ROLLUP_USAGE = f"""
INSERT INTO netra_usage_daily (project_id, day, rollup_id, tenant_id, user_id, model, session_id, span_count,
    request_count, input_tokens, output_tokens, cached_tokens, cost, unpriced_count)
SELECT
    project_id, toDate32(start_time) AS d, {{rid:UInt64}}, tenant_id, user_id, model, session_id, {USAGE_SUMS}
FROM netra_spans FINAL
WHERE {_DAY_WHERE}
GROUP BY project_id, d, tenant_id, user_id, model, session_id
"""

SQL_ROLLUP_LATENCY = f"""
INSERT INTO netra_latency_daily (project_id, scope, day, rollup_id, tenant_id, span_count, error_count, durations)
SELECT
    project_id,
    arrayJoin(arrayFilter(x -> x != '', ['all', if({LATENCY_SCOPES['root']}, 'root', ''),
        if({LATENCY_SCOPES['llm']}, 'llm', '')])) AS s,
    toDate32(start_time) AS d, {{rid:UInt64}}, tenant_id,
    count(), countIf(status_code = 'ERROR'), quantilesExactState(0.5, 0.95, 0.99)(duration_ns)
FROM netra_spans FINAL
WHERE {_DAY_WHERE}
GROUP BY project_id, s, d, tenant_id
"""

_FIRST = "(parent_span_id != '', start_time, span_id)"

SQL_ROLLUP_TRACES = f"""
INSERT INTO netra_traces_daily (project_id, tenant_id, day, rollup_id, trace_id, user_id, session_id, start_time,
    end_time, first_child, first_start, first_span_id, name, kind, service, environment, models, prompt_tokens,
    completion_tokens, cached_tokens, cost, unpriced_count, has_error, span_count)
SELECT
    project_id, tenant_id, toDate32(start_time) AS d, {{rid:UInt64}}, trace_id, user_id, session_id,
    min(start_time), max(end_time), tupleElement(min({_FIRST}), 1), tupleElement(min({_FIRST}), 2),
    tupleElement(min({_FIRST}), 3),
    argMin(name, {_FIRST}), argMin(kind, {_FIRST}), argMin(service, {_FIRST}),
    anyIf(environment, environment != ''), groupUniqArrayIf(model, model != ''),
    sumIf(input_tokens, {COUNTED}), sumIf(output_tokens, {COUNTED}), sumIf(cached_tokens, {COUNTED}),
    toDecimal128(ifNull(sumIf(cost, {COUNTED}), 0), 10), countIf({COUNTED} AND cost IS NULL), max(status_code = 'ERROR'), count()
FROM netra_spans FINAL
WHERE {_DAY_WHERE}
GROUP BY project_id, tenant_id, d, trace_id, user_id, session_id
"""

SQL_ROLLUP_DONE = (
    "INSERT INTO netra_rollup_days (day, parts_hash, rollup_id, computed_at) "
    "VALUES ({c_day:Date32}, {h:UInt64}, {rid:UInt64}, now64(3))"
)

ROLLUP_TABLES = ("netra_usage_daily", "netra_latency_daily", "netra_traces_daily", "netra_rollup_days")


def compute_day(runner: _Runs, day: int, parts_hash: int) -> int:
    """Compute the rollups of one day; ``parts_hash`` is the partition's fingerprint read *before*
    this call. Returns the new rollup id (committed once its ``netra_rollup_days`` row is written)."""
    rid = secrets.randbits(63)
    params = {"rid": rid, "c_start": day * DAY_NS, "c_end": (day + 1) * DAY_NS - 1}
    runner.command(SQL_ROLLUP_USAGE, params)
    runner.command(SQL_ROLLUP_LATENCY, params)
    runner.command(SQL_ROLLUP_TRACES, params)
    runner.command(SQL_ROLLUP_DONE, {"c_day": day_str(day), "h": parts_hash, "rid": rid})
    return rid


def refresh(
    runner: _Runs,
    *,
    settle_seconds: float = 60.0,
    max_days: int | None = None,
    gc_grace_seconds: float = GC_GRACE_SECONDS,
) -> list[str]:
    """Roll up every day partition that changed since its last rollup and has had no new part for
    ``settle_seconds`` (newest days first, at most ``max_days``); delete computations replaced more than
    ``gc_grace_seconds`` ago. Returns the days computed (``YYYY-MM-DD``)."""
    partitions = runner.query(SQL_PARTITIONS)
    computations = runner.query(SQL_COMPUTATIONS)
    latest: dict[str, dict[str, Any]] = {}
    for c in computations:  # ordered by day, computed_at
        latest[c["day"]] = c
    todo = [
        p for p in partitions
        if (latest.get(p["day"]) or {}).get("parts_hash") != p["parts_hash"] and int(p["idle_s"]) >= settle_seconds
    ]
    todo.sort(key=lambda p: p["day"], reverse=True)
    done = []
    for p in todo[:max_days]:
        compute_day(runner, day_num(p["day"]), int(p["parts_hash"]))
        done.append(p["day"])
    _collect_garbage(runner, computations, {p["day"] for p in partitions}, gc_grace_seconds)
    return done


def _collect_garbage(
    runner: _Runs, computations: list[dict[str, Any]], days_present: set[str], grace_seconds: float
) -> None:
    """Delete computations superseded (or of a day without spans any more) ``grace_seconds`` ago."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for c in computations:
        by_day.setdefault(c["day"], []).append(c)
    stale: list[int] = []
    for day, cs in by_day.items():
        newest = cs[-1]
        if int(newest["age_s"]) < grace_seconds:
            continue
        stale.extend(int(c["rollup_id"]) for c in cs[:-1])
        if day not in days_present:
            stale.append(int(newest["rollup_id"]))
    if not stale:
        return
    tables = ", ".join(f"'{t}'" for t in ROLLUP_TABLES)
    pending = runner.query(
        f"SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND table IN ({tables}) "
        "AND NOT is_done"
    )
    if int(pending[0]["n"]):
        return  # the deletes of an earlier refresh are still running
    ids = ",".join(str(i) for i in stale)
    for table in ROLLUP_TABLES:
        runner.command(
            f"ALTER TABLE {table} DELETE WHERE rollup_id IN (SELECT toUInt64(arrayJoin(splitByChar(',', {{ids:String}}))))",
            {"ids": ids},
        )
    log.info("deleted %d superseded rollup computations", len(stale))
