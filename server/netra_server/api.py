"""The query routes: the Netra-compatible usage/trace routes and our own (``/api/...``).

Netra-compatible (same paths and shapes as the routes the Netra SDK's usage client calls):

- ``GET /usage/sessions/{session_id}?startTime=&endTime=``
- ``GET /usage/tenants/{tenant_id}?startTime=&endTime=``
- ``POST /sdk/traces`` (filters, pagination, sort)
- ``GET /sdk/traces/{trace_id}/spans?cursor=&direction=&limit=&spanName=``

Ours: ``POST /trace/usage``, ``GET /api/me``, ``GET /api/usage/summary``, ``GET /api/latency``, ``GET /api/traces/{trace_id}/usage``,
``GET|POST /api/keys``, ``DELETE /api/keys/{key_id}``.

Times are ISO 8601 (``Z``, an offset or none = UTC; fractional seconds); a missing bound is open. A
window holds the spans whose *start* time is in ``[startTime, endTime]``. Aggregates follow the billing
rule (``docs/design.md``): a span counts iff it has usage and is not covered; a span delivered twice
counts once; ``totalCost`` sums known costs and our routes report ``unpricedCount`` (counted spans
whose price is unknown) beside it.

Money is exact: costs stay ``Decimal`` from the store to the answer, and the routes that answer money
return :class:`~netra_server.responses.ExactJSONResponse`, which writes each one as a JSON number with
its exact digits (never a float rounded to ~15 significant digits). A span whose price is unknown has
``null``, never ``0``.

Each answer is built as a pydantic model of :mod:`netra.usage.wire` (the usage answers, which the
usage client reads by the same definitions) or :mod:`netra_server.wire` (errors, keys, latency),
validated as it is built, and given as ``response_model`` so that the OpenAPI document is generated
from the same models. Every route returns its ``ExactJSONResponse`` itself, which FastAPI sends as it
is (no second validation); it writes the model's fields with exact money.

Pagination: a page's items carry a ``cursor``; pass the last item's ``cursor`` with the same
``direction`` to read on. A listing has an order: traces by ``sortField`` (default ``start_time``) in
``sortOrder`` (default ``asc`` by time, so oldest first; ``desc`` by latency, cost and tokens), spans by
start time. ``down`` (the default) reads forward in that order from the cursor; ``up`` reads backward
from the cursor and returns the items nearest the cursor first (so its last item continues upward).
``up`` without a cursor starts at the end of the listing. So by time, as the Netra docs say, ``down``
reads newer traces (from the oldest of the window on) and ``up`` older ones (from the newest on); both
visit every trace once. ``pageInfo.hasNextPage`` says whether more items follow in that direction.

``POST /trace/usage`` (ours): per-call (span) usage by model, own and rolled up over descendants.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from netra.usage import wire
from netra_server import wire as server_wire
from netra_server.auth import ROLES, AuthContext
from netra_server.deps import admin_auth, read_auth, state_of
from netra_server.errors import ApiError
from netra_server.responses import ExactJSONResponse
from netra_server.store import (
    ApiKeyRecord,
    SortField,
    SpanRow,
    TraceQuery,
    TraceSummary,
    UsageTotals,
    Window,
)
from netra_server.trace_tree import UsageRollup, span_tree
from netra_server.validation import BadRequest, iso_ms, iso_ns, parse_time
from netra_server.wire import errors

#: Every route returns its ExactJSONResponse (Decimals as exact numbers) itself.
router = APIRouter(default_response_class=ExactJSONResponse)


class _AnyIdConvertor(Convertor[str]):
    """A path parameter that is the rest of the path, whatever it holds: Starlette's ``path``
    (``.*``) stops at a newline, so an id with one (sent percent-encoded, ``%0A``) answered 404.
    Any stored tenant/session id can be named: percent-encode it (``quote(id, safe="")``)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anyid", _AnyIdConvertor())

_TRACE_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_ID_MAX = 256

Auth = Annotated[AuthContext, Depends(read_auth)]
Admin = Annotated[AuthContext, Depends(admin_auth)]
StartTime = Annotated[str | None, Query(alias="startTime", description="ISO 8601; inclusive; open if omitted")]
EndTime = Annotated[str | None, Query(alias="endTime", description="ISO 8601; inclusive; open if omitted")]


def _window(start: str | None, end: str | None) -> Window:
    s = parse_time(start, "startTime")
    e = parse_time(end, "endTime")
    w = Window(s if s is not None else Window().start_ns, e if e is not None else Window().end_ns)
    if w.end_ns < w.start_ns:
        raise BadRequest(f"endTime ({end}) is before startTime ({start})")
    return w


def _id(value: str, name: str) -> str:
    if not value or len(value) > _ID_MAX:
        raise BadRequest(f"{name} must be 1 to {_ID_MAX} characters")
    return value


def _trace_id(value: str) -> str:
    if not _TRACE_ID_RE.match(value):
        raise BadRequest(f"trace id {value!r} must be 32 hexadecimal characters")
    return value.lower()


def _tenant_scope(ctx: AuthContext, tenant_id: str | None) -> str | None:
    """The tenant a read is limited to: the key's tenant (others answer 403) or the requested one."""
    if ctx.tenant_id is None:
        return tenant_id
    if tenant_id is not None and tenant_id != ctx.tenant_id:
        raise ApiError(403, f"this API key can only read tenant {ctx.tenant_id!r}")
    return ctx.tenant_id


Totals = TypeVar("Totals", bound=wire.UsageTotals)


def _totals(t: UsageTotals, shape: type[Totals], **more: Any) -> Totals:
    return shape(
        requestsCount=t.request_count, tokenCount=t.token_count, inputTokens=t.input_tokens,
        outputTokens=t.output_tokens, cachedTokens=t.cached_tokens, totalCost=t.total_cost,
        unpricedCount=t.unpriced_count, sessionsCount=t.session_count, spanCount=t.span_count, **more,
    )


# -- Netra-compatible ---------------------------------------------------------------------------------


@router.get("/usage/sessions/{session_id:anyid}", tags=["netra-compatible"], summary="Usage of one session",
             response_model=wire.SessionUsageResponse,
             responses=errors(400, 401, 403, 503))
async def session_usage(
    request: Request, ctx: Auth, session_id: Annotated[str, Path()], start: StartTime = None, end: EndTime = None
) -> ExactJSONResponse:
    state = state_of(request)
    window = _window(start, end)
    sid = _id(session_id, "session_id")
    t = await state.store.run(
        state.store.usage_totals, ctx.project_id, window, session_id=sid, tenant_id=_tenant_scope(ctx, None)
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
    window = _window(start, end)
    tid = _tenant_scope(ctx, _id(tenant_id, "tenant_id"))
    t = await state.store.run(state.store.usage_totals, ctx.project_id, window, tenant_id=tid)
    return ExactJSONResponse(wire.TenantUsageResponse(data=wire.TenantUsage(
        tenant_id=tenant_id, organisation_id=ctx.organisation_id, tokenCount=t.token_count,
        requestsCount=t.request_count, sessionsCount=t.session_count, totalCost=t.total_cost)))


class TraceFilter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    field: Literal["tenant_id", "session_id", "user_id", "trace_id"]
    operator: Literal["equals"] = "equals"
    type: Literal["string"] = "string"
    value: str = Field(min_length=1, max_length=_ID_MAX)


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
    window = _window(body.startTime, body.endTime)
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
        filters[f.field] = _trace_id(f.value) if f.field == "trace_id" else f.value
    tenant = _tenant_scope(ctx, filters.get("tenant_id"))
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
    tid = _trace_id(trace_id)
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
        state.store.trace_spans, ctx.project_id, tid, tenant_id=_tenant_scope(ctx, None),
        span_name=span_name or None, after=after, direction=direction, limit=limit,
    )
    items = [_trace_span(s, ctx, state.cursors.encode(scope, [s.start_ns, s.span_id])) for s in spans]
    return ExactJSONResponse(wire.TraceSpansResponse(
        data=wire.SpanPage(data=items, pageInfo=wire.PageInfo(hasNextPage=more))))


# -- ours ---------------------------------------------------------------------------------------------


@router.get("/api/me", tags=["netra"], summary="The calling key: project, role, tenant limit",
             response_model=server_wire.MeResponse, responses=errors(401, 403, 503))
async def me(request: Request, ctx: Annotated[AuthContext, Depends(read_auth)]) -> ExactJSONResponse:
    state = state_of(request)
    project = await state.store.run(state.store.get_project, ctx.project_id)
    return ExactJSONResponse(server_wire.MeResponse(data=server_wire.Me(
        key_id=ctx.key_id, project_id=ctx.project_id, organisation_id=ctx.organisation_id,
        project_name=project.name if project else "", role=cast(server_wire.Role, ctx.role),
        tenant_id=ctx.tenant_id)))


@router.get("/api/usage/summary", tags=["netra"], summary="Usage grouped by tenant, model, user, session or day",
             response_model=wire.UsageSummaryResponse,
             responses=errors(400, 401, 403, 503))
async def usage_summary(
    request: Request,
    ctx: Auth,
    group_by: Annotated[Literal["tenant", "model", "user", "session", "day"], Query(alias="groupBy")] = "tenant",
    start: StartTime = None,
    end: EndTime = None,
    tenant_id: Annotated[str | None, Query(alias="tenantId", max_length=_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ExactJSONResponse:
    """Each group: requestsCount, tokenCount (input + output), inputTokens, outputTokens, cachedTokens,
    totalCost (known costs), unpricedCount (counted spans with an unknown price), sessionsCount, spanCount.
    ``day`` is the UTC date of span start. Model groups cover counted spans only."""
    state = state_of(request)
    window = _window(start, end)
    tenant = _tenant_scope(ctx, tenant_id)
    groups = await state.store.run(state.store.usage_summary, ctx.project_id, group_by, window, tenant_id=tenant, limit=limit)
    total = await state.store.run(state.store.usage_totals, ctx.project_id, window, tenant_id=tenant)
    return ExactJSONResponse(wire.UsageSummaryResponse(data=wire.UsageSummary(
        groupBy=group_by,
        groups=[_totals(g.totals, wire.UsageGroup, key=g.key) for g in groups],
        total=_totals(total, wire.UsageTotals),
    )))


@router.get("/api/latency", tags=["netra"], summary="Latency percentiles and error rate per tenant",
             response_model=server_wire.LatencyResponse,
             responses=errors(400, 401, 403, 503))
async def latency(
    request: Request,
    ctx: Auth,
    start: StartTime = None,
    end: EndTime = None,
    tenant_id: Annotated[str | None, Query(alias="tenantId", max_length=_ID_MAX)] = None,
    scope: Annotated[Literal["root", "llm", "all"], Query()] = "root",
) -> ExactJSONResponse:
    """Per tenant: p50/p95/p99 of span duration (ms, exact) and the share of spans with status ERROR.
    ``scope``: ``root`` spans (one per trace), ``llm`` spans (billed model calls) or ``all``."""
    state = state_of(request)
    window = _window(start, end)
    stats = await state.store.run(
        state.store.latency_stats, ctx.project_id, window, tenant_id=_tenant_scope(ctx, tenant_id), scope=scope
    )
    return ExactJSONResponse(server_wire.LatencyResponse(data=[
        server_wire.LatencyStats(tenant_id=s.tenant_id, spanCount=s.span_count, errorCount=s.error_count,
                                 errorRate=s.error_rate, p50Ms=s.p50_ms, p95Ms=s.p95_ms, p99Ms=s.p99_ms)
        for s in stats
    ]))


def _usage_of(s: SpanRow) -> wire.SpanOwnUsage:
    return wire.SpanOwnUsage(inputTokens=s.input_tokens, outputTokens=s.output_tokens, cachedTokens=s.cached_tokens,
                             totalTokens=s.input_tokens + s.output_tokens, cost=s.cost)


@router.get("/api/traces/{trace_id:anyid}/usage", tags=["netra"], summary="Per-span usage of a trace, with descendant rollup",
             response_model=wire.TraceUsageResponse,
             responses=errors(400, 401, 403, 404, 503, e404="No span of this trace in the project (or the key's tenant)"))
async def trace_usage(request: Request, ctx: Auth, trace_id: Annotated[str, Path()]) -> ExactJSONResponse:
    """Every span with its own usage (``own``, as recorded), whether it ``counted`` under the billing
    rule, and ``rollup``: the counted usage of the span and all its descendants (what the span cost).
    The root spans' rollups add up to ``total``."""
    state = state_of(request)
    tid = _trace_id(trace_id)
    spans, _ = await state.store.run(
        state.store.trace_spans, ctx.project_id, tid, tenant_id=_tenant_scope(ctx, None), limit=100_000
    )
    if not spans:
        raise ApiError(404, f"no spans of trace {tid} (in this project)")
    tree = span_tree(spans)
    return ExactJSONResponse(wire.TraceUsageResponse(data=wire.TraceUsage(
        trace_id=tid,
        spans=[
            wire.SpanUsage(
                span_id=s.span_id, parent_span_id=s.parent_span_id or None, name=s.name, span_type=s.span_type,
                model=s.model, start_time=iso_ns(s.start_ns), tenant_id=s.tenant_id, has_usage=s.has_usage,
                covered=s.covered, counted=s.counted, cost_source=s.cost_source, costUnknown=s.cost_unknown,
                versions=s.versions, own=_usage_of(s), rollup=_rollup(node.rollup),
            )
            for node in tree.nodes
            for s in (node.span,)
        ],
        total=_rollup(tree.total),
    )))


def _rollup(r: UsageRollup) -> wire.UsageRollup:
    return wire.UsageRollup(requestsCount=r.request_count, inputTokens=r.input_tokens, outputTokens=r.output_tokens,
                            cachedTokens=r.cached_tokens, totalCost=r.total_cost, unpricedCount=r.unpriced_count,
                            totalTokens=r.total_tokens)


_SPAN_ID_RE = re.compile(r"^[0-9a-fA-F]{16}$")
_CALL_USAGE_MAX_IDS = 1000
_CALL_USAGE_MAX_SPANS = 100_000


class CallUsageFilter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    trace_ids: list[str] | None = Field(default=None, max_length=_CALL_USAGE_MAX_IDS)
    call_ids: list[str] | None = Field(default=None, max_length=_CALL_USAGE_MAX_IDS)


class CallUsageRequest(BaseModel):
    """``POST /trace/usage``: ids at the top level or under ``filter`` (both are read)."""

    model_config = ConfigDict(extra="ignore")
    project_id: str | None = Field(default=None, description="Ignored: the API key decides the project")
    trace_ids: list[str] | None = Field(default=None, max_length=_CALL_USAGE_MAX_IDS)
    call_ids: list[str] | None = Field(default=None, max_length=_CALL_USAGE_MAX_IDS)
    filter: CallUsageFilter | None = None
    include_costs: bool = False
    limit: int = Field(default=1000, ge=1, le=10_000)


def _model_usage(r: UsageRollup, include_costs: bool) -> wire.ModelUsage:
    """One model's usage; its cost fields only when asked (left unset, they are not written)."""
    costs: dict[str, Any] = {"total_cost": r.total_cost, "unpriced_requests": r.unpriced_count} if include_costs else {}
    return wire.ModelUsage(requests=r.request_count, prompt_tokens=r.input_tokens, completion_tokens=r.output_tokens,
                           cached_tokens=r.cached_tokens, total_tokens=r.total_tokens, **costs)


def _own_rollup(s: SpanRow) -> UsageRollup:
    """The usage a span recorded itself (whether or not it counts)."""
    if not s.has_usage:
        return UsageRollup()
    return UsageRollup(request_count=1, input_tokens=s.input_tokens, output_tokens=s.output_tokens,
                       cached_tokens=s.cached_tokens, total_cost=s.cost if s.cost is not None else Decimal(0),
                       unpriced_count=1 if s.cost is None else 0)


@router.post("/trace/usage", tags=["netra"], summary="Per-call usage by model, with descendant rollup",
              response_model=wire.CallUsageResponse, responses=errors(400, 401, 403, 503))
async def call_usage(request: Request, ctx: Auth, body: CallUsageRequest) -> ExactJSONResponse:
    """Usage of calls (spans) per model: ``own`` (what the call recorded itself, whether or not it
    counted) and ``rollup`` (the counted usage of the call and all its descendants, by the billing
    rule: each unit once). Give ``trace_ids`` (every call of those traces) and/or ``call_ids`` (span
    ids); ``limit`` caps the number of calls answered (``truncated`` says when it did);
    ``include_costs`` adds ``total_cost`` (exact USD, known prices) and ``unpriced_requests``."""
    state = state_of(request)
    flt = body.filter or CallUsageFilter()
    trace_ids = [*(body.trace_ids or []), *(flt.trace_ids or [])]
    call_ids = [*(body.call_ids or []), *(flt.call_ids or [])]
    if not trace_ids and not call_ids:
        raise BadRequest("give trace_ids and/or call_ids (span ids), at the top level or under filter")
    if len(trace_ids) > _CALL_USAGE_MAX_IDS or len(call_ids) > _CALL_USAGE_MAX_IDS:
        raise BadRequest(f"at most {_CALL_USAGE_MAX_IDS} trace_ids and {_CALL_USAGE_MAX_IDS} call_ids per request")
    tids = list(dict.fromkeys(_trace_id(t) for t in trace_ids))
    cids: list[str] = []
    for c in call_ids:
        if not _SPAN_ID_RE.match(c):
            raise BadRequest(f"call id {c!r} must be a span id: 16 hexadecimal characters")
        cids.append(c.lower())
    wanted = set(cids)
    tenant = _tenant_scope(ctx, None)
    if cids:
        found = await state.store.run(state.store.traces_of_spans, ctx.project_id, cids, tenant_id=tenant)
        tids = list(dict.fromkeys([*tids, *found]))
    whole = set(_trace_id(t) for t in trace_ids)
    usage: dict[str, wire.CallUsage] = {}
    truncated = False
    for tid in tids:
        spans, _ = await state.store.run(
            state.store.trace_spans, ctx.project_id, tid, tenant_id=tenant, limit=_CALL_USAGE_MAX_SPANS
        )
        tree = span_tree(spans)
        per_model: dict[str, dict[str, UsageRollup]] = {}
        for node in reversed(tree.nodes):  # children before parents
            acc: dict[str, UsageRollup] = {}
            if node.span.counted:
                acc.setdefault(node.span.model, UsageRollup()).add(UsageRollup.of(node.span))
            for child in node.children:
                for model, r in per_model[child.span.span_id].items():
                    acc.setdefault(model, UsageRollup()).add(r)
            per_model[node.span.span_id] = acc
        for node in tree.nodes:
            s = node.span
            if tid not in whole and s.span_id not in wanted:
                continue
            if len(usage) >= body.limit:
                truncated = True
                break
            own = {s.model: _model_usage(_own_rollup(s), body.include_costs)} if s.has_usage else {}
            usage[s.span_id] = wire.CallUsage(
                trace_id=s.trace_id, parent_id=s.parent_span_id or None, name=s.name, kind=s.type_name,
                counted=s.counted, own=own,
                rollup={m: _model_usage(r, body.include_costs) for m, r in sorted(per_model[s.span_id].items())},
            )
        if truncated:
            break
    return ExactJSONResponse(wire.CallUsageResponse(data=wire.CallUsageData(call_usage=usage, truncated=truncated)))


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "ingest", "read"] = "read"
    tenantId: str | None = Field(default=None, max_length=_ID_MAX)
    name: str = Field(default="", max_length=200)


def _key(rec: ApiKeyRecord, shape: type[server_wire.ApiKey] = server_wire.ApiKey, **more: Any) -> Any:
    """The key's public fields (never its hash)."""
    return shape(key_id=rec.key_id, project_id=rec.project_id, name=rec.name, role=cast(server_wire.Role, rec.role),
                 tenant_id=rec.tenant_id, created_at=rec.created_at, revoked=rec.revoked, **more)


@router.get("/api/keys", tags=["keys"], summary="List the project's API keys (admin)",
             response_model=server_wire.ApiKeysResponse, responses=errors(401, 403, 503))
async def list_keys(request: Request, ctx: Admin) -> ExactJSONResponse:
    state = state_of(request)
    keys = await state.store.run(state.store.list_keys, ctx.project_id)
    return ExactJSONResponse(server_wire.ApiKeysResponse(data=[_key(k) for k in keys]))


@router.post("/api/keys", tags=["keys"], summary="Create an API key (admin); the key is shown once",
              response_model=server_wire.NewApiKeyResponse,
              responses=errors(400, 401, 403, 503))
async def create_key(request: Request, ctx: Admin, body: KeyCreate) -> ExactJSONResponse:
    state = state_of(request)
    if body.role not in ROLES:  # pragma: no cover - Literal already checks
        raise BadRequest("bad role")
    try:
        key, rec = await state.store.run(
            state.keys.create_key, ctx.project_id, role=body.role, tenant_id=body.tenantId or None, name=body.name
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return ExactJSONResponse(server_wire.NewApiKeyResponse(data=_key(rec, server_wire.NewApiKey, key=key)))


@router.delete("/api/keys/{key_id}", tags=["keys"], summary="Revoke an API key (admin)",
                response_model=server_wire.ApiKeyResponse,
                responses=errors(400, 401, 403, 404, 503, e404="No such key in this project"))
async def revoke_key(request: Request, ctx: Admin, key_id: Annotated[str, Path(max_length=64)]) -> ExactJSONResponse:
    state = state_of(request)
    try:
        rec = await state.store.run(state.keys.revoke, key_id, project_id=ctx.project_id)
    except KeyError as exc:
        raise ApiError(404, f"no API key {key_id!r} in this project") from exc
    return ExactJSONResponse(server_wire.ApiKeyResponse(data=_key(rec)))
