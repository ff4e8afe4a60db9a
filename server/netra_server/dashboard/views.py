"""View helpers of the dashboard: time ranges, chart geometry, the waterfall of a span tree (the tree
and its rollups come from :mod:`netra_server.trace_tree`), money and duration formatting. No I/O here; the routes call the store and hand results to these."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson

from netra_server.store import SpanRow, UsageGroup, Window
from netra_server.trace_tree import SpanNode, SpanTree, UsageRollup

__all__ = [
    "RANGES",
    "Bar",
    "SpanView",
    "TimeRange",
    "cost_chart",
    "fmt_duration_ns",
    "fmt_money",
    "parse_json",
    "time_range",
    "waterfall",
]

Bucket = Literal["minute", "hour", "day"]


@dataclass(frozen=True)
class TimeRange:
    key: str
    label: str
    seconds: int
    bucket: Bucket


RANGES: dict[str, TimeRange] = {
    r.key: r
    for r in (
        TimeRange("15m", "Last 15 minutes", 900, "minute"),
        TimeRange("1h", "Last hour", 3600, "minute"),
        TimeRange("6h", "Last 6 hours", 6 * 3600, "hour"),
        TimeRange("24h", "Last 24 hours", 86400, "hour"),
        TimeRange("7d", "Last 7 days", 7 * 86400, "day"),
        TimeRange("30d", "Last 30 days", 30 * 86400, "day"),
    )
}
DEFAULT_RANGE = "24h"


def time_range(key: str | None) -> TimeRange:
    return RANGES.get(key or "", RANGES[DEFAULT_RANGE])


def window_of(r: TimeRange, now: float | None = None) -> Window:
    end = int((time.time() if now is None else now) * 1e9)
    return Window(end - r.seconds * 1_000_000_000, end)


# -- formatting ---------------------------------------------------------------------------------------


def fmt_money(value: Decimal | float | None) -> str:
    """``$12.34``, ``$0.0042``: two decimals above a dollar, four significant digits below."""
    if value is None:
        return "—"
    v = Decimal(value)
    if v == 0:
        return "$0"
    if abs(v) >= 1:
        return f"${v:,.2f}"
    return "$" + f"{v:.4g}" if abs(v) >= Decimal("0.0001") else "$" + f"{v:.2e}"


def fmt_duration_ns(ns: int | float) -> str:
    ms = ns / 1e6
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def fmt_ts_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def show_value(value: Any) -> str:
    """An attribute value for display: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def parse_json(text: str) -> Any:
    try:
        return orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return text


# -- the cost chart -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    max_label: str
    first_label: str
    last_label: str
    total: Decimal


def _bucket_keys(r: TimeRange, window: Window) -> list[str]:
    start = datetime.fromtimestamp(window.start_ns / 1e9, UTC)
    end = datetime.fromtimestamp(window.end_ns / 1e9, UTC)
    if r.bucket == "day":
        step, fmt = timedelta(days=1), "%Y-%m-%d"
        t = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elif r.bucket == "hour":
        step, fmt = timedelta(hours=1), "%Y-%m-%d %H:%M:%S"
        t = start.replace(minute=0, second=0, microsecond=0)
    else:
        step, fmt = timedelta(minutes=1), "%Y-%m-%d %H:%M:%S"
        t = start.replace(second=0, microsecond=0)
    keys = []
    while t <= end:
        keys.append(t.strftime(fmt))
        t += step
    return keys


def cost_chart(r: TimeRange, window: Window, groups: list[UsageGroup], *, width: int = 900, height: int = 220) -> Chart:
    """Bars of cost per time bucket (every bucket of the range, empty ones at zero)."""
    by_key = {g.key: g.totals for g in groups}
    keys = _bucket_keys(r, window)
    costs = [by_key[k].total_cost if k in by_key else Decimal(0) for k in keys]
    top = max(costs, default=Decimal(0)) or Decimal(1)
    n = max(len(keys), 1)
    slot = width / n
    bars = []
    for i, (k, c) in enumerate(zip(keys, costs, strict=True)):
        h = float(c / top) * (height - 4)
        t = by_key.get(k)
        label = k[5:16] if r.bucket != "day" else k[5:]
        title = f"{k} UTC: {fmt_money(c)}" + (f", {t.request_count} requests, {t.token_count:,} tokens" if t else "")
        bars.append(Bar(i * slot + slot * 0.1, height - h, max(slot * 0.8, 1.0), h, label, title))
    return Chart(
        bars, width, height, fmt_money(top if top != 1 or any(costs) else Decimal(0)),
        bars[0].label if bars else "", bars[-1].label if bars else "", sum(costs, Decimal(0)),
    )


# -- the span tree -----------------------------------------------------------------------------------


@dataclass
class SpanView:
    """A span of the waterfall: the tree node (depth, children, subtree rollup from
    :func:`netra_server.trace_tree.span_tree`) with its bar geometry and decoded attributes and events."""

    node: SpanNode
    offset_pct: float = 0.0
    width_pct: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)

    @property
    def span(self) -> SpanRow:
        return self.node.span

    @property
    def depth(self) -> int:
        return self.node.depth

    @property
    def children(self) -> list[SpanNode]:
        return self.node.children

    @property
    def subtree(self) -> UsageRollup:
        """Counted usage of the span and its descendants (the billing rule: what the subtree cost)."""
        return self.node.rollup


def waterfall(tree: SpanTree) -> list[SpanView]:
    """The tree's spans in depth-first order (children by start time) with waterfall geometry."""
    total = max(tree.end_ns - tree.start_ns, 1)
    out = []
    for node in tree.nodes:
        s = node.span
        attrs = parse_json(s.attributes)
        events = parse_json(s.events)
        out.append(SpanView(
            node,
            offset_pct=(s.start_ns - tree.start_ns) / total * 100,
            width_pct=max((s.end_ns - s.start_ns) / total * 100, 0.4),
            attributes=attrs if isinstance(attrs, dict) else {},
            events=events if isinstance(events, list) else [],
        ))
    return out
