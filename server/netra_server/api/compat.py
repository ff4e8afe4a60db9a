"""The Netra-compatible query routes: the paths and shapes the Netra SDK's usage client calls.

``GET /usage/sessions/{session_id}``, ``GET /usage/tenants/{tenant_id}``, ``POST /sdk/traces`` (filters,
pagination, sort), ``GET /sdk/traces/{trace_id}/spans``. See :mod:`netra_server.api` for the rules
they share (times, the billing rule, exact money, pagination).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from netra.usage import wire
from netra_server.api.params import (
    ID_MAX,
    Auth,
    EndTime,
    StartTime,
    check_id,
    check_trace_id,
    tenant_scope,
    window_of,
)
from netra_server.auth import AuthContext
from netra_server.deps import state_of
from netra_server.responses import ExactJSONResponse
from netra_server.store import SortField, SpanRow, TraceQuery, TraceSummary
from netra_server.validation import BadRequest, iso_ms, iso_ns
from netra_server.wire import errors

__all__ = ["SORT_FIELDS", "router", "sort_field_of"]

router = APIRouter(default_response_class=ExactJSONResponse)


@router.get("/usage/sessions/{session_id:anyid}", tags=["netra-compatible"], summary="Usage of one session",
             response_model=wire.SessionUsageResponse,
             responses=errors(400, 401, 403, 503))
async def session_usage(
    request: Request, ctx: Auth, session_id: Annotated[str, Path()], start: StartTime = None, end: EndTime = None
) -> ExactJSONResponse:
    state = state_of(request)
    window = window_of(start, end)
    sid = check_id(session_id, "session_id")
    t = await state.store.run(
        state.store.usage_totals, ctx.project_id, window, session_id=sid, tenant_id=tenant_scope(ctx, None)
    )
    return ExactJSONResponse(wire.SessionUsageResponse(data=wire.SessionUsage(
        session_id=sid, tokenCount=t.token_count, requestsCount=t.request_count, totalCost=t.total_cost)))


@router.get("/usage/tenants/{tenant_id:anyid}", tags=["netra-compatible"], summary="Usage of one tenant",
             response_model=wire.TenantUsageResponse,
             responses=errors(400, 401, 403, 503))
async def tenant_usage(
    request: Request, ctx: Auth, tenant_id: Annotated[str, Path()], start: StartTime = None, end: EndTime = None
) -> ExactJSONResponse:
    state = state_of(request)
    window = window_of(start, end)
    tid = tenant_scope(ctx, check_id(tenant_id, "tenant_id"))
    t = await state.store.run(state.store.usage_totals, ctx.project_id, window, tenant_id=tid)
    return ExactJSONResponse(wire.TenantUsageResponse(data=wire.TenantUsage(
        tenant_id=tenant_id, organisation_id=ctx.organisation_id, tokenCount=t.token_count,
        requestsCount=t.request_count, sessionsCount=t.session_count, totalCost=t.total_cost)))


class TraceFilter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    field: Literal["tenant_id", "session_id", "user_id", "trace_id"]
    operator: Literal["equals"] = "equals"
    type: Literal["string"] = "string"
    value: str = Field(min_length=1, max_length=ID_MAX)


class Pagination(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1)
    cursor: str | None = None
    direction: Literal["up", "down"] = "down"


#: ``sortField`` values (case, ``_`` and ``-`` ignored) -> the sort key. The Netra docs' names
#: (``start_time``, ``startTime``, ``createdAt``, ``latency``, ``latency_ms``, ``total_cost``, ``cost``,
#: ``total_tokens``...) and the TraceSummary field names are all accepted.
_SORT_ALIASES: dict[str, SortField] = {
    "starttime": "start_time", "start": "start_time", "time": "start_time", "timestamp": "start_time",
    "createdat": "start_time", "created": "start_time", "date": "start_time",
    "latency": "latency", "latencyms": "latency", "duration": "latency", "durationms": "latency",
    "cost": "cost", "totalcost": "cost",
    "tokens": "tokens", "totaltokens": "tokens",
}
SORT_FIELDS = ("start_time", "latency", "cost", "tokens")


def sort_field_of(value: str | None) -> SortField | None:
    """The sort key named by a ``sortField`` value (None: not a known name)."""
    if value is None:
        return "start_time"
    return _SORT_ALIASES.get(value.replace("_", "").replace("-", "").lower())


class TraceListRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    startTime: str | None = None
    endTime: str | None = None
    filters: list[TraceFilter] = Field(default_factory=list, max_length=16)
    pagination: Pagination = Field(default_factory=Pagination)
    sortField: str | None = None
    sortOrder: str | None = None


def _trace_summary(t: TraceSummary, ctx: AuthContext, cursor: str) -> wire.TraceSummary:
    return wire.TraceSummary(
        id=t.trace_id, name=t.name, kind=t.span_type, latency_ms=t.latency_ns // 1_000_000,
        start_time=iso_ns(t.start_ns), end_time=iso_ns(t.end_ns), cursor=cursor,
        organisation_id=ctx.organisation_id, project_id=ctx.project_id, session_id=t.session_id,
        tenant_id=t.tenant_id, user_id=t.user_id, environment=t.environment, models=t.models,
        prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens, cached_tokens=t.cached_tokens,
        total_tokens=t.total_tokens, total_cost=t.total_cost, has_error=t.has_error, service=t.service,
    )


@router.post("/sdk/traces", tags=["netra-compatible"], summary="List traces (filters, pagination, sort)",
              response_model=wire.TracesResponse,
              responses=errors(400, 401, 403, 503))
async def list_traces(request: Request, ctx: Auth, body: TraceListRequest) -> ExactJSONResponse:
    state = state_of(request)
    window = window_of(body.startTime, body.endTime)
    limits = state.settings.limits
    page = body.pagination
    if page.limit > limits.max_page_limit:
        raise BadRequest(f"pagination.limit must be at most {limits.max_page_limit}")
    sort_field = sort_field_of(body.sortField)
    if sort_field is None:
        raise BadRequest(
            f"sortField must be one of start_time (startTime, createdAt, timestamp), latency (latency_ms, "
            f"duration), cost (total_cost) or tokens (total_tokens); got {body.sortField!r}"
        )
    # By time the listing runs forward (oldest first): `down` (the default) reads newer traces, `up`
    # older ones, as the Netra docs say. By latency, cost or tokens it runs from the largest down.
    sort_order = (body.sortOrder or ("asc" if sort_field == "start_time" else "desc")).lower()
    if sort_order not in ("asc", "desc"):
        raise BadRequest(f"sortOrder must be asc or desc (got {body.sortOrder!r})")
    filters: dict[str, str] = {}
    for f in body.filters:
        if f.field in filters and filters[f.field] != f.value:
            raise BadRequest(f"two different values for filter {f.field}")
        filters[f.field] = check_trace_id(f.value) if f.field == "trace_id" else f.value
    tenant = tenant_scope(ctx, filters.get("tenant_id"))
    scope = f"traces:{ctx.project_id}:{sort_field}:{sort_order}"
    after: tuple[str, str] | None = None
    if page.cursor:
        values = state.cursors.decode(scope, page.cursor)
        if len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise BadRequest("cursor is not valid for this listing")
        after = (str(values[0]), str(values[1]))
    q = TraceQuery(
        window=window, tenant_id=tenant, session_id=filters.get("session_id"), user_id=filters.get("user_id"),
        trace_id=filters.get("trace_id"), sort_field=sort_field, sort_order=sort_order,  # type: ignore[arg-type]
        direction=page.direction, after=after, limit=page.limit,
    )
    result = await state.store.run(state.store.list_traces, ctx.project_id, q)
    items = [
        _trace_summary(t, ctx, state.cursors.encode(scope, [t.sort_value(sort_field), t.trace_id]))
        for t in result.items
    ]
    return ExactJSONResponse(wire.TracesResponse(
        data=wire.TracePage(data=items, pageInfo=wire.PageInfo(hasNextPage=result.has_more))))


def _trace_span(s: SpanRow, ctx: AuthContext, cursor: str) -> wire.TraceSpan:
    # Types as the Netra SDK's TraceSpan model declares them: start_time_ms / end_time_ms are strings
    # (milliseconds since the epoch), attributes / events / links / resources JSON text, kind the span
    # type (SPAN, GENERATION, TOOL, EMBEDDING, AGENT); the OpenTelemetry span kind is otel_kind.
    return wire.TraceSpan(
        id=s.span_id, trace_id=s.trace_id, name=s.name, kind=s.type_name, otel_kind=s.kind,
        parent_span_id=s.parent_span_id or None, latency_ms=s.duration_ns // 1_000_000,
        start_time_ms=str(s.start_ns // 1_000_000), end_time_ms=str(s.end_ns // 1_000_000),
        organisation_id=ctx.organisation_id, project_id=ctx.project_id, session_id=s.session_id,
        tenant_id=s.tenant_id, user_id=s.user_id, environment=s.environment, model_name=s.model,
        prompt_tokens=s.input_tokens, completion_tokens=s.output_tokens, cached_tokens=s.cached_tokens,
        total_tokens=s.input_tokens + s.output_tokens, total_cost=s.cost, status=s.status_code,
        has_error=s.status_code == "ERROR", attributes=s.attributes, events=s.events, links=s.links,
        resources=s.resource_attributes, created_at=iso_ms(s.ingested_ms * 1_000_000), cursor=cursor,
    )


@router.get("/sdk/traces/{trace_id:anyid}/spans", tags=["netra-compatible"], summary="Spans of one trace",
             response_model=wire.TraceSpansResponse,
             responses=errors(400, 401, 403, 503))
async def trace_spans(
    request: Request,
    ctx: Auth,
    trace_id: Annotated[str, Path()],
    cursor: Annotated[str | None, Query()] = None,
    direction: Annotated[Literal["up", "down"], Query()] = "down",
    limit: Annotated[int, Query(ge=1)] = 100,
    span_name: Annotated[str | None, Query(alias="spanName", max_length=1024)] = None,
) -> ExactJSONResponse:
    state = state_of(request)
    tid = check_trace_id(trace_id)
    if limit > state.settings.limits.max_page_limit:
        raise BadRequest(f"limit must be at most {state.settings.limits.max_page_limit}")
    scope = f"spans:{ctx.project_id}:{tid}"
    after: tuple[int, str] | None = None
    if cursor:
        values = state.cursors.decode(scope, cursor)
        if len(values) != 2 or not isinstance(values[0], int) or not isinstance(values[1], str):
            raise BadRequest("cursor is not valid for this listing")
        after = (values[0], values[1])
    spans, more = await state.store.run(
        state.store.trace_spans, ctx.project_id, tid, tenant_id=tenant_scope(ctx, None),
        span_name=span_name or None, after=after, direction=direction, limit=limit,
    )
    items = [_trace_span(s, ctx, state.cursors.encode(scope, [s.start_ns, s.span_id])) for s in spans]
    return ExactJSONResponse(wire.TraceSpansResponse(
        data=wire.SpanPage(data=items, pageInfo=wire.PageInfo(hasNextPage=more))))
