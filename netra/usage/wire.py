"""The usage API's JSON shapes: one pydantic model per object the server answers and the client reads.

This is the one definition of each shape (field names are the JSON keys, in the order they are
written). The server (``netra_server.api``) builds its answers from these models and FastAPI's
OpenAPI document (``/openapi.json``, ``/docs``) is generated from them; the usage client
(:mod:`netra.usage.models`) reads the answers by these keys into its result models, whose names and
types follow the published netra-sdk rather than the wire. ``tests/usage/test_wire_contract.py``
checks, against a real server, that every key the server sends is a key the client reads and the
reverse.

Money (``totalCost``, ``total_cost``, ``cost``) is typed :data:`Money`: a ``Decimal`` whose schema is
a JSON ``number``. On the wire it is a number written with the exact digits of the stored decimal
(the server renders it, never through a float); read it as a decimal (Python:
``json.loads(body, parse_float=Decimal)``, then ``Model.model_validate(...)``; pydantic's own JSON
parser reads a number through a float and would round it).

The Netra cloud's answers carry a few keys this server does not send (PII and guardrail fields,
per-kind costs): a model lists them in ``cloud_only``; the client reads them when they are there.

This module imports pydantic: ``import netra.usage`` does not load it (the client does with the
first answer it reads).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, WithJsonSchema

__all__ = [
    "EXACT_MONEY",
    "CallUsage",
    "CallUsageData",
    "CallUsageResponse",
    "ModelUsage",
    "Money",
    "PageInfo",
    "SessionUsage",
    "SessionUsageResponse",
    "SpanOwnUsage",
    "SpanPage",
    "SpanUsage",
    "TenantUsage",
    "TenantUsageResponse",
    "TracePage",
    "TraceSpan",
    "TraceSpansResponse",
    "TraceSummary",
    "TraceUsage",
    "TraceUsageResponse",
    "TracesResponse",
    "UsageGroup",
    "UsageRollup",
    "UsageSummary",
    "UsageSummaryResponse",
    "UsageTotals",
]

EXACT_MONEY = (
    "USD. A JSON number with the exact digits of the stored decimal (e.g. 0.00027, 12345678.0123456789), "
    "never rounded through a float: read it as a decimal."
)

#: Money on the wire: a JSON number with exact digits (a ``Decimal`` in Python).
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]


def _money(text: str) -> Any:
    return Field(description=f"{text}. {EXACT_MONEY}")


def _iso(text: str) -> Any:
    return Field(description=f"{text}: ISO 8601, UTC, nanoseconds (2025-01-31T12:00:00.123456789Z)")


# -- the Netra-compatible routes (the paths and keys of the Netra SDK's usage client) -----------------


class SessionUsage(BaseModel):
    session_id: str
    tokenCount: int = Field(description="Input + output tokens of the counted spans")
    requestsCount: int = Field(description="Spans whose usage counts under the billing rule")
    totalCost: Money = _money("Sum of the known costs of the counted spans")


class SessionUsageResponse(BaseModel):
    data: SessionUsage


class TenantUsage(BaseModel):
    tenant_id: str
    organisation_id: str
    tokenCount: int = Field(description="Input + output tokens of the counted spans")
    requestsCount: int = Field(description="Spans whose usage counts under the billing rule")
    sessionsCount: int = Field(description="Distinct non-empty session ids among the tenant's spans")
    totalCost: Money = _money("Sum of the known costs of the counted spans")


class TenantUsageResponse(BaseModel):
    data: TenantUsage


class PageInfo(BaseModel):
    hasNextPage: bool = Field(description="Whether more items follow in this direction")


class TraceSummary(BaseModel):
    """One trace of a listing; totals follow the billing rule."""

    cloud_only: ClassVar[frozenset[str]] = frozenset({
        "prompt_tokens_cost", "completion_tokens_cost", "cached_tokens_cost", "has_pii", "pii_entities",
        "has_violation", "violations",
    })

    id: str = Field(description="Trace id, 32 hexadecimal characters")
    name: str = Field(description="Name of the root span")
    kind: str = Field(description="Span type of the root span: SPAN, GENERATION, TOOL, EMBEDDING, AGENT (or USAGE)")
    latency_ms: int = Field(description="Duration of the trace in whole milliseconds")
    start_time: str = _iso("Start of the earliest span")
    end_time: str = _iso("End of the latest span")
    cursor: str = Field(description="Pass as pagination.cursor (same direction) to read on from this item")
    organisation_id: str
    project_id: str
    session_id: str = Field(description="Empty when not set")
    tenant_id: str = Field(description="Empty when not set")
    user_id: str = Field(description="Empty when not set")
    environment: str = Field(description="deployment.environment(.name) of the resource; empty when not set")
    models: list[str] = Field(description="Models used in the trace")
    prompt_tokens: int = Field(description="Input tokens of the counted spans")
    completion_tokens: int = Field(description="Output tokens of the counted spans")
    cached_tokens: int = Field(description="Cached input tokens of the counted spans")
    total_tokens: int = Field(description="prompt_tokens + completion_tokens")
    total_cost: Money = _money("Sum of the known costs of the counted spans")
    has_error: bool = Field(description="Whether a span of the trace has status ERROR")
    service: str = Field(description="service.name of the root span's resource")


class TracePage(BaseModel):
    data: list[TraceSummary]
    pageInfo: PageInfo


class TracesResponse(BaseModel):
    data: TracePage


class TraceSpan(BaseModel):
    """One span of a trace, with its own recorded usage."""

    cloud_only: ClassVar[frozenset[str]] = frozenset({
        "prompt_tokens_cost", "completion_tokens_cost", "cached_tokens_cost", "has_pii", "pii_entities",
        "pii_actions", "has_violation", "violations", "violation_actions", "metadata",
    })

    id: str = Field(description="Span id, 16 hexadecimal characters")
    trace_id: str
    name: str
    kind: str = Field(
        description="Span type: netra.span.type in upper case (SPAN, GENERATION, TOOL, EMBEDDING, AGENT, USAGE); "
        "when the producer set none, EMBEDDING for an embeddings call, GENERATION for a model call, else SPAN"
    )
    otel_kind: str = Field(description="OpenTelemetry span kind (INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER)")
    parent_span_id: str | None = Field(description="null for a root span")
    latency_ms: int = Field(description="Duration in whole milliseconds")
    start_time_ms: str = Field(description="Start, milliseconds since the Unix epoch, as a string (as the Netra SDK reads it)")
    end_time_ms: str = Field(description="End, milliseconds since the Unix epoch, as a string")
    organisation_id: str
    project_id: str
    session_id: str = Field(description="Empty when not set")
    tenant_id: str = Field(description="Empty when not set")
    user_id: str = Field(description="Empty when not set")
    environment: str = Field(description="deployment.environment(.name); empty when not set")
    model_name: str = Field(description="Response (else request) model; empty for a span without a model")
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    total_tokens: int = Field(description="prompt_tokens + completion_tokens")
    total_cost: Money | None = _money("The span's own cost; null when its price is unknown or it has no cost")
    status: str = Field(description="OpenTelemetry status code: UNSET, OK or ERROR")
    has_error: bool = Field(description="status is ERROR")
    attributes: str = Field(description="The span's attributes as a JSON object, in a string")
    events: str = Field(description="The span's events as a JSON array, in a string")
    links: str = Field(description="The span's links as a JSON array, in a string")
    resources: str = Field(description="The resource's attributes as a JSON object, in a string")
    created_at: str = Field(description="When the server stored the span: ISO 8601, UTC, milliseconds")
    cursor: str = Field(description="Pass as cursor (same direction) to read on from this item")


class SpanPage(BaseModel):
    data: list[TraceSpan]
    pageInfo: PageInfo


class TraceSpansResponse(BaseModel):
    data: SpanPage


# -- our own routes -----------------------------------------------------------------------------------


class UsageTotals(BaseModel):
    """Aggregates under the billing rule."""

    requestsCount: int = Field(description="Spans whose usage counts")
    tokenCount: int = Field(description="inputTokens + outputTokens")
    inputTokens: int
    outputTokens: int
    cachedTokens: int
    totalCost: Money = _money("Sum of the known costs of the counted spans")
    unpricedCount: int = Field(description="Counted spans whose price is unknown (not in totalCost)")
    sessionsCount: int = Field(description="Distinct non-empty session ids")
    spanCount: int = Field(description="All spans, counted or not")


class UsageGroup(UsageTotals):
    key: str = Field(description="The tenant, model, user or session id (empty: not set), or the UTC date")


class UsageSummary(BaseModel):
    groupBy: Literal["tenant", "model", "user", "session", "day"]
    groups: list[UsageGroup]
    total: UsageTotals = Field(
        description="All the window's spans (within the tenant filter), not only the listed groups"
    )


class UsageSummaryResponse(BaseModel):
    data: UsageSummary


class SpanOwnUsage(BaseModel):
    """The usage a span recorded itself (whether or not it counted)."""

    inputTokens: int
    outputTokens: int
    cachedTokens: int
    totalTokens: int = Field(description="inputTokens + outputTokens")
    cost: Money | None = _money("null when the price is unknown or the span has no cost")


class UsageRollup(BaseModel):
    """Counted usage of a span and all its descendants (or of the whole trace)."""

    requestsCount: int
    inputTokens: int
    outputTokens: int
    cachedTokens: int
    totalCost: Money = _money("Sum of the known costs")
    unpricedCount: int = Field(description="Counted spans whose price is unknown (not in totalCost)")
    totalTokens: int = Field(description="inputTokens + outputTokens")


class SpanUsage(BaseModel):
    span_id: str
    parent_span_id: str | None = Field(description="null for a root span (or one whose parent is not stored)")
    name: str
    span_type: str = Field(
        description="netra.span.type (generation, tool, agent...), lower case; empty when not set"
    )
    model: str
    start_time: str = _iso("Span start")
    tenant_id: str
    has_usage: bool = Field(description="The span recorded tokens, a cost or netra.usage")
    covered: bool = Field(
        description="A descendant in the trace recorded usage (decided by the server, whatever the producer "
        "marked; netra.usage.covered from the producer is honoured too)"
    )
    counted: bool = Field(description="The span's own usage counts in aggregates (has_usage and not covered)")
    cost_source: str = Field(description="price_table:<version>, provider, user, or empty")
    costUnknown: bool = Field(description="The span has tokens of a model whose price is unknown")
    versions: int = Field(
        default=1,
        description="Distinct versions of this span (same trace id and span id) delivered: 1 normally; more "
        "when it was sent again with other content (another tenant, start time, cost...). The first version "
        "stored is the span; later versions are not stored or counted",
    )
    own: SpanOwnUsage
    rollup: UsageRollup


class TraceUsage(BaseModel):
    trace_id: str
    spans: list[SpanUsage] = Field(description="Depth first; siblings in start-time order")
    total: UsageRollup = Field(description="The trace's counted usage (the roots' rollups added up)")


class TraceUsageResponse(BaseModel):
    data: TraceUsage


class ModelUsage(BaseModel):
    """Usage of one model: requests and tokens (and, with ``include_costs``, cost)."""

    requests: int = Field(description="Calls with usage of this model")
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    total_tokens: int = Field(description="prompt_tokens + completion_tokens")
    total_cost: Money | None = Field(
        default=None, description=f"Only with include_costs: sum of the known costs. {EXACT_MONEY}"
    )
    unpriced_requests: int | None = Field(
        default=None, description="Only with include_costs: calls whose price is unknown (not in total_cost)"
    )


class CallUsage(BaseModel):
    """One call (span): its own usage and its rollup, each keyed by model (empty: no model named)."""

    trace_id: str
    parent_id: str | None = Field(description="The parent call's span id; null for a root")
    name: str
    kind: str = Field(description="Span type: SPAN, GENERATION, TOOL, EMBEDDING, AGENT")
    counted: bool = Field(description="The call's own usage counts in aggregates (no descendant recorded usage)")
    own: dict[str, ModelUsage] = Field(description="What the call recorded itself, counted or not")
    rollup: dict[str, ModelUsage] = Field(
        description="Counted usage of the call and all its descendants (each unit once)"
    )


class CallUsageData(BaseModel):
    call_usage: dict[str, CallUsage] = Field(description="Keyed by call (span) id; in trace order, depth first")
    truncated: bool = Field(description="limit was reached: more calls matched")


class CallUsageResponse(BaseModel):
    data: CallUsageData
