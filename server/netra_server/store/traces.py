"""The trace listing (``list_traces``): pages of trace summaries, by start time, latency, cost or
tokens, with cursors (:class:`TraceReads`).

Traces are aggregated from the daily trace rollups and the spans of the window's other days
(``rollups.trace_source``). By start time (the default) a page is found from one end of the window
on without reading all of it (:meth:`TraceReads._traces_by_start`, whose docstring says why it is
exact); by the other keys, the sort key of every trace first, then the summaries of the page's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netra_server import rollups
from netra_server.store import sql
from netra_server.store.base import StoreBase
from netra_server.store.records import SortField, TracePage, TraceQuery, TraceSummary, Window, decimal_of

__all__ = ["TraceReads"]


class TraceReads(StoreBase):
    """Pages of trace summaries (see :class:`~netra_server.store.records.TraceQuery`)."""

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
            keys = self._trace_rows(plan, where, params, q.sort_field, ascending, q.after, page, keys_only=True)
            ids = [r["t_trace_id"] for r in keys]
            rows = self._trace_rows(plan, where, params, q.sort_field, ascending, q.after, page, ids) if ids else []
        items = [
            TraceSummary(
                trace_id=r["t_trace_id"], name=r["t_name"], kind=r["t_kind"], start_ns=int(r["t_start_ns"]),
                end_ns=int(r["t_end_ns"]), latency_ns=int(r["t_latency_ns"]), session_id=r["t_session_id"],
                tenant_id=r["t_tenant_id"], user_id=r["t_user_id"], environment=r["t_environment"],
                service=r["t_service"], models=list(r["t_models"]), prompt_tokens=int(r["t_prompt_tokens"]),
                completion_tokens=int(r["t_completion_tokens"]), cached_tokens=int(r["t_cached_tokens"]),
                total_tokens=int(r["t_total_tokens"]), total_cost=decimal_of(r["t_total_cost"]),
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
        cond = " AND ".join([*where, sql.WINDOW_SQL, sql.IN_TRACES])
        # only the part of the window the page's traces span (their spans in the window start there)
        span = Window(max(window.start_ns, min(t.start_ns for t in items)), min(window.end_ns, max(t.end_ns for t in items)))
        rows = self.query(sql.SQL_TRACE_TYPES.format(where=cond),
                          {**params, **span.params(), "t_ids": ",".join(t.trace_id for t in items)})
        types = {r["t_trace_id"]: str(r["t_type"]) for r in rows}
        return [replace(t, span_type=types.get(t.trace_id, "SPAN")) for t in items]

    @staticmethod
    def _trace_order(
        sort_field: SortField, ascending: bool, after: tuple[str, str] | None, params: dict[str, Any]
    ) -> tuple[str, str, str]:
        """The sort expression, ``ASC``/``DESC`` and the ``HAVING`` clause that starts after the cursor
        ``after`` (its values go into ``params``) for a trace aggregation ordered by ``sort_field``."""
        sort_expr, cursor_param = sql.TRACE_SORT[sort_field]
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
        *,
        keys_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Per-trace rows of the first ``limit`` traces over ``plan`` in sort order after the cursor
        ``after`` (only the traces ``trace_ids`` when given): the summaries, or with ``keys_only``
        ``t_trace_id`` and the sort key (``t_start_ns``, ``t_latency_ns``, ``t_total_tokens`` or
        ``t_total_cost``, as the summaries compute them: :data:`sql.TRACE_KEYS`)."""
        params = dict(params)
        if trace_ids is not None:
            where = [*where, sql.IN_TRACES]
            params["t_ids"] = ",".join(trace_ids)
        sort_expr, order, having = self._trace_order(sort_field, ascending, after, params)
        params["limit"] = limit
        source = rollups.trace_source(plan, where, params)
        columns = f"x_trace AS t_trace_id, {sql.TRACE_KEYS[sort_field]}" if keys_only else rollups.TRACE_COLUMNS
        statement = sql.SQL_LIST_TRACES.format(columns=columns, source=source, having=having, sort=sort_expr, order=order)
        return self.query(statement, params)

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
            cand = self.query(sql.SQL_TRACE_CANDIDATES.format(source=source, cursor=cursor, order=order), cparams)
            full = len(cand) == n
            ids = list(dict.fromkeys(r["t_trace_id"] for r in cand))
            if not full and not covers_all and len(ids) < page:  # too few traces in the slice for a page
                width = max(2 * (b - a + 1), (b - a + 1) * 2 * n // max(1, len(cand)))
                continue
            if len(ids) > page:  # the candidates' starts over the whole window first: the page's ids
                keys = self._trace_rows(plan, where, params, "start_time", ascending, q.after, page, ids, keys_only=True)
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
