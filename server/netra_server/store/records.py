"""The store's records: what its reads return (and take), as frozen dataclasses, and how a row of its
SQL (:mod:`netra_server.store.sql`) becomes one.

These are the server's own values (nanoseconds, snake_case, ``Decimal`` money); the JSON the routes
answer is built from them through the wire shapes (:mod:`netra.usage.wire`, :mod:`netra_server.wire`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "MAX_NS",
    "MIN_NS",
    "ApiKeyRecord",
    "LatencyStats",
    "Project",
    "SortField",
    "SpanRow",
    "TracePage",
    "TraceQuery",
    "TraceSummary",
    "UsageGroup",
    "UsageTotals",
    "Window",
    "api_key_of",
    "decimal_of",
    "span_of",
    "span_type_name",
    "totals_of",
]

MIN_NS = 0
MAX_NS = 9_200_000_000_000_000_000  # 2261-07-..., inside DateTime64(9)'s range


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
        ``netra.span.type`` when the producer set it, else inferred as :data:`~netra_server.store.sql.SPAN_TYPE_SQL` does."""
        return span_type_name(self.span_type, self.name, self.model, self.input_tokens + self.output_tokens)

    @property
    def counted(self) -> bool:
        """The billing rule: this span's usage counts in aggregates."""
        return self.has_usage and not self.covered


def span_type_name(span_type: str, name: str, model: str, tokens: int) -> str:
    """The Netra span type of a span (upper case): its ``netra.span.type`` when set; else EMBEDDING for
    an embeddings call (by name: ``embeddings <model>``, ``openai.embedding``), GENERATION for a model
    call (a model or tokens), SPAN otherwise. The same rule as :data:`~netra_server.store.sql.SPAN_TYPE_SQL`."""
    if span_type:
        return span_type.upper()
    if "embedding" in name.lower():
        return "EMBEDDING"
    if model or tokens > 0:
        return "GENERATION"
    return "SPAN"


# -- rows -> records ---------------------------------------------------------------------------------


def decimal_of(value: Any) -> Decimal:
    """A summed cost column (a decimal string; NULL: nothing summed) as a Decimal."""
    return Decimal(0) if value is None else Decimal(str(value))


def totals_of(row: dict[str, Any]) -> UsageTotals:
    """The ``u_*`` columns of a totals row (``sql.TOTALS_COLUMNS``, ``rollups.usage_totals_columns``)."""
    return UsageTotals(
        request_count=int(row["u_request_count"]),
        token_count=int(row["u_token_count"]),
        input_tokens=int(row["u_input_tokens"]),
        output_tokens=int(row["u_output_tokens"]),
        cached_tokens=int(row["u_cached_tokens"]),
        total_cost=decimal_of(row["u_total_cost"]),
        unpriced_count=int(row["u_unpriced_count"]),
        session_count=int(row["u_session_count"]),
        span_count=int(row["u_span_count"]),
    )


def span_of(r: dict[str, Any]) -> SpanRow:
    """A row of ``schema.SPAN_SELECT``."""
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


def api_key_of(r: dict[str, Any]) -> ApiKeyRecord:
    """A row of ``sql.SQL_GET_KEYS``."""
    return ApiKeyRecord(
        key_id=r["key_id"], project_id=r["project_id"], key_hash=r["key_hash"], name=r["name"],
        role=r["role"], tenant_id=r["tenant_id"], created_at=r["created_at"], revoked=bool(r["revoked"]),
    )
