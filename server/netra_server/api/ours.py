"""Our own query routes: ``GET /api/me``, ``GET /api/usage/summary``, ``GET /api/latency``,
``GET /api/traces/{trace_id}/usage`` and ``POST /trace/usage`` (per-call usage by model, own and
rolled up over descendants). See :mod:`netra_server.api` for the rules they share.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from netra.usage import wire
from netra_server import wire as server_wire
from netra_server.api.params import ID_MAX, Auth, EndTime, StartTime, check_trace_id, tenant_scope, window_of
from netra_server.auth import AuthContext
from netra_server.deps import read_auth, state_of
from netra_server.errors import ApiError
from netra_server.responses import ExactJSONResponse
from netra_server.store import SpanRow, UsageTotals
from netra_server.trace_tree import UsageRollup, span_tree
from netra_server.validation import BadRequest, iso_ns
from netra_server.wire import errors

__all__ = ["router"]

router = APIRouter(default_response_class=ExactJSONResponse)

Totals = TypeVar("Totals", bound=wire.UsageTotals)


def _totals(t: UsageTotals, shape: type[Totals], **more: Any) -> Totals:
    return shape(
        requestsCount=t.request_count, tokenCount=t.token_count, inputTokens=t.input_tokens,
        outputTokens=t.output_tokens, cachedTokens=t.cached_tokens, totalCost=t.total_cost,
        unpricedCount=t.unpriced_count, sessionsCount=t.session_count, spanCount=t.span_count, **more,
    )


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
    tenant_id: Annotated[str | None, Query(alias="tenantId", max_length=ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ExactJSONResponse:
    """Each group: requestsCount, tokenCount (input + output), inputTokens, outputTokens, cachedTokens,
    totalCost (known costs), unpricedCount (counted spans with an unknown price), sessionsCount, spanCount.
    ``day`` is the UTC date of span start. Model groups cover counted spans only."""
    state = state_of(request)
    window = window_of(start, end)
    tenant = tenant_scope(ctx, tenant_id)
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
    tenant_id: Annotated[str | None, Query(alias="tenantId", max_length=ID_MAX)] = None,
    scope: Annotated[Literal["root", "llm", "all"], Query()] = "root",
) -> ExactJSONResponse:
    """Per tenant: p50/p95/p99 of span duration (ms, exact) and the share of spans with status ERROR.
    ``scope``: ``root`` spans (one per trace), ``llm`` spans (billed model calls) or ``all``."""
    state = state_of(request)
    window = window_of(start, end)
    stats = await state.store.run(
        state.store.latency_stats, ctx.project_id, window, tenant_id=tenant_scope(ctx, tenant_id), scope=scope
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
    tid = check_trace_id(trace_id)
    spans, _ = await state.store.run(
        state.store.trace_spans, ctx.project_id, tid, tenant_id=tenant_scope(ctx, None), limit=100_000
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
    tids = list(dict.fromkeys(check_trace_id(t) for t in trace_ids))
    cids: list[str] = []
    for c in call_ids:
        if not _SPAN_ID_RE.match(c):
            raise BadRequest(f"call id {c!r} must be a span id: 16 hexadecimal characters")
        cids.append(c.lower())
    wanted = set(cids)
    tenant = tenant_scope(ctx, None)
    if cids:
        found = await state.store.run(state.store.traces_of_spans, ctx.project_id, cids, tenant_id=tenant)
        tids = list(dict.fromkeys([*tids, *found]))
    whole = set(check_trace_id(t) for t in trace_ids)
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
