"""The metric query of an alert rule: the SELECT over the span table that computes a rule's value
(latency, cost, tokens, error rate or request count; per span or per trace) in its window."""

from __future__ import annotations

from typing import Any

from netra_server.store import COUNTED, Store, Window

from .model import AlertRule

__all__ = ["metric_sql"]


#: Span-level value of each metric; cost and tokens follow the billing rule (counted spans only).
_SPAN_VALUE = {
    "latency": "duration_ns / 1e6",
    "cost": "toFloat64(ifNull(cost, 0))",
    "tokens": "input_tokens + output_tokens",
    "error_rate": "100 * (status_code = 'ERROR')",
    "request_count": "1",
}
#: Trace-level value of each metric, over the trace's spans in the window.
_TRACE_VALUE = {
    "latency": "(toUnixTimestamp64Nano(max(end_time)) - toUnixTimestamp64Nano(min(start_time))) / 1e6",
    "cost": f"toFloat64(ifNull(sumIf(cost, {COUNTED}), 0))",
    "tokens": f"sumIf(input_tokens + output_tokens, {COUNTED})",
    "error_rate": "100 * max(status_code = 'ERROR')",
    "request_count": "1",
}
_AGG = {
    "p50": "quantileExact(0.5)(v)",
    "p90": "quantileExact(0.9)(v)",
    "p95": "quantileExact(0.95)(v)",
    "p99": "quantileExact(0.99)(v)",
    "avg": "avg(v)",
    "min": "min(v)",
    "max": "max(v)",
    "sum": "sum(v)",
    "count": "count()",
}
#: Filters on request context go in WHERE; span filters at trace scope in HAVING (a trace matches when
#: one of its spans does).
_COLUMN = {
    "tenant_id": "tenant_id",
    "user_id": "user_id",
    "session_id": "session_id",
    "environment": "environment",
    "model": "model",
    "span_name": "name",
}
_SPAN_FIELDS = ("model", "span_name")


def metric_sql(rule: AlertRule, now: float) -> tuple[str, dict[str, Any]]:
    """The SELECT computing ``value`` (and ``n``, the number of spans or traces) for ``rule`` at ``now``."""
    end_ns = int(now * 1e9)
    window = Window(end_ns - rule.window_seconds * 1_000_000_000, end_ns)
    where: list[str] = []
    having: list[str] = []
    params: dict[str, Any] = {}
    for i, f in enumerate(rule.filters):
        name = f"a_f{i}"
        params[name] = f.value
        test = f"{_COLUMN[f.field]} {f.op} {{{name}:String}}"
        if rule.scope == "trace" and f.field in _SPAN_FIELDS:
            having.append(
                f"countIf({test}) > 0"
                if f.op == "="
                else f"countIf({_COLUMN[f.field]} = {{{name}:String}}) = 0"
            )
        else:
            where.append(test)
    if rule.scope == "span" and rule.metric in ("cost", "tokens", "request_count"):
        where.append(COUNTED)
    base, base_params = Store.span_filter(rule.project_id, window, extra=where)
    params.update(base_params)
    agg = _AGG[rule.aggregation or "p95"]
    if rule.scope == "span":
        inner = f"SELECT {_SPAN_VALUE[rule.metric]} AS v FROM netra_spans FINAL WHERE {base}"
    else:
        having_sql = f"HAVING {' AND '.join(having)}" if having else ""
        inner = (
            f"SELECT {_TRACE_VALUE[rule.metric]} AS v FROM netra_spans FINAL WHERE {base} "
            f"GROUP BY trace_id {having_sql}"
        )
    return f"SELECT count() AS n, {agg} AS value FROM ({inner})", params
