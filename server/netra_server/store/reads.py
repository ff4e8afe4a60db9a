"""The store's span reads other than trace listings: usage totals and summaries under the billing
rule, latency percentiles, the spans of a trace (:class:`SpanReads`).

Totals, summaries (except by hour and minute) and latency read whole days of their window from the
daily rollups while those are valid and the rest from ``netra_spans FINAL`` (``netra_server.rollups``);
totals and summaries read the whole minutes of the day being written from the live usage table while
it is kept (``netra_server.live_usage``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Literal

from netra_server import billing, rollups, schema
from netra_server.store import sql
from netra_server.store.base import StoreBase
from netra_server.store.records import (
    LatencyStats,
    SpanRow,
    UsageGroup,
    UsageTotals,
    Window,
    span_of,
    totals_of,
)

log = logging.getLogger("netra_server.store")

__all__ = ["SpanReads"]


class SpanReads(StoreBase):
    """Usage totals and summaries, latency, the spans of a trace."""

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
        def build(plan: rollups.Plan) -> tuple[str, dict[str, Any]]:
            where, params = self._filters(project_id, tenant_id=tenant_id, session_id=session_id, user_id=user_id)
            source = rollups.usage_source(plan, where, params, counted_only=False)
            return sql.SQL_USAGE_TOTALS.format(totals=rollups.usage_totals_columns(counted_only=False), source=source), params

        key = ("totals", project_id, window, tenant_id, session_id, user_id)
        return totals_of(self._usage_rows(window, build, key)[0])

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
        key = sql.GROUP_KEYS.get(group_by)
        if key is None:
            raise ValueError(f"group_by must be one of {sorted(sql.GROUP_KEYS)}, not {group_by!r}")
        order = "group_key" if group_by in ("day", "hour", "minute") else "u_total_cost DESC, u_token_count DESC, group_key"
        counted_only = group_by == "model"
        if group_by in ("hour", "minute"):  # finer than a day: from the spans
            where_sql, params = self.span_filter(project_id, window, tenant_id=tenant_id)
            params["limit"] = limit
            rows = self.query(sql.SQL_USAGE_SUMMARY.format(key=key, where=where_sql, order=order), params)
        else:
            def build(plan: rollups.Plan) -> tuple[str, dict[str, Any]]:
                where, params = self._filters(project_id, tenant_id=tenant_id)
                source = rollups.usage_source(plan, where, params, counted_only=counted_only)
                params["limit"] = limit
                return sql.SQL_USAGE_SUMMARY_ROLLUP.format(
                    key=sql.ROLLUP_GROUP_KEYS[group_by], totals=rollups.usage_totals_columns(counted_only=counted_only),
                    source=source, order=order,
                ), params

            rows = self._usage_rows(window, build, ("summary", project_id, group_by, window, tenant_id, limit))
        return [UsageGroup(str(r["group_key"]), totals_of(r)) for r in rows]

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
        for r in self.query(sql.SQL_LATENCY.format(source=source), params):
            n = int(r["span_count"])
            errors = int(r["error_count"])
            q = [float(x) / 1e6 for x in r["q"]]
            out.append(LatencyStats(r["tenant_id"], n, errors, errors / n if n else 0.0, q[0], q[1], q[2]))
        return out

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
            extra.append(sql.span_name_condition(span_name, params))
        forward = direction == "down"
        if after is not None:
            extra.append(f"(toUnixTimestamp64Nano(start_time), span_id) {'>' if forward else '<'} ({{c_val:Int64}}, {{c_id:String}})")
            params["c_val"], params["c_id"] = after
        where, wparams = self.span_filter(project_id, None, tenant_id=tenant_id, trace_id=trace_id, extra=extra)
        params.update(wparams)
        params["limit"] = limit + 1
        rows = self.query(sql.SQL_TRACE_SPANS.format(where=where, order="ASC" if forward else "DESC"), params)
        spans = self._with_resources(project_id, [span_of(r) for r in rows])
        if spans:
            versions = billing.SpanIndex.versions(self, project_id, trace_id)
            if versions:
                spans = [replace(s, versions=versions[s.span_id]) if s.span_id in versions else s for s in spans]
        return spans[:limit], len(spans) > limit

    def _with_resources(self, project_id: str, spans: list[SpanRow]) -> list[SpanRow]:
        """``spans`` with each ``@resource:<id>`` (``schema.RESOURCE_REF_PREFIX``) replaced by the
        resource's attributes from ``netra_resources`` (one read for all of them)."""
        prefix = schema.RESOURCE_REF_PREFIX
        ids = {s.resource_attributes[len(prefix):] for s in spans if s.resource_attributes.startswith(prefix)}
        if not ids:
            return spans
        rows = self.query(sql.SQL_RESOURCES, {"p": project_id, "ids": ",".join(sorted(ids))})
        found = {str(r["resource_id"]): str(r["attributes"]) for r in rows}
        missing = ids - found.keys()
        if missing:  # never expected: a row names a resource only once it is stored
            log.error("project %s: span rows name resources that are not stored: %s", project_id, sorted(missing)[:5])
        return [
            replace(s, resource_attributes=found.get(s.resource_attributes[len(prefix):], "{}"))
            if s.resource_attributes.startswith(prefix) else s
            for s in spans
        ]

    def traces_of_spans(self, project_id: str, span_ids: list[str], *, tenant_id: str | None = None) -> list[str]:
        """The trace ids of the spans ``span_ids`` (hex, as stored) in the project (and tenant)."""
        if not span_ids:
            return []
        where, params = self.span_filter(
            project_id, None, tenant_id=tenant_id,
            extra=["span_id IN (SELECT arrayJoin(splitByChar(',', {s_ids:String})))"],
        )
        params["s_ids"] = ",".join(span_ids)
        rows = self.query(sql.SQL_TRACES_OF_SPANS.format(where=where), params)
        return [str(r["trace_id"]) for r in rows]

    def count_spans(self, project_id: str | None = None) -> int:
        """Distinct spans stored (duplicates once), in one project or all."""
        if project_id is None:
            return int(self.query(sql.SQL_COUNT_SPANS)[0]["n"])
        return int(
            self.query(sql.SQL_COUNT_SPANS_OF_PROJECT, {"p": project_id})[0]["n"]
        )
