"""Typed results of the usage client.

**The Netra-compatible results** (:class:`SessionUsageData`, :class:`TenantUsageData`,
:class:`TraceSummary`, :class:`TracesPage`, :class:`TraceSpan`, :class:`SpansPage`) are pydantic models
with the field names and types of the published ``netra-sdk`` (1.2.2): ``.model_dump()``,
``.model_dump_json()`` and ``total_cost`` as a ``float`` work as they do there, so code written for that
SDK runs unchanged.

**Money**: ``total_cost`` is a ``float`` (as in netra-sdk: convenient, ``usage.total_cost * 1.2`` works)
and ``total_cost_usd`` beside it is the exact amount the server stored, a :class:`decimal.Decimal`.
**Use ``total_cost_usd`` for invoices and anything you add up**: a float keeps about 15 significant
digits and a sum of floats drifts (``0.1 + 0.2 != 0.3``); the Decimal is exactly the digits the server
sent (the client reads JSON numbers as ``Decimal``, never through a float). ``None`` where a cost is
unknown (never 0).

**Our own routes' results** (:class:`UsageSummary`, :class:`TraceUsage`, :class:`CallUsageResult`...)
are frozen dataclasses whose money (``total_cost``, ``cost``) is already exact (``Decimal``).

Every model has ``from_dict``, which accepts the wire JSON (the keys of its shape in
:mod:`netra.usage.wire`, the one definition the server answers by), ignores keys it does not know,
and raises :class:`~netra.usage.errors.InvalidResponseError` naming the key when a required one is
missing or has the wrong type. This module imports pydantic; ``import netra`` and ``import netra.usage`` do not (the
client loads it with the first answer it reads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from netra.usage import wire
from netra.usage._read import Reader, json_dumps, json_text
from netra.usage.errors import InvalidResponseError

__all__ = [
    "CallUsage",
    "CallUsageResult",
    "ModelUsage",
    "SessionUsageData",
    "SpanOwnUsage",
    "SpanUsage",
    "SpansPage",
    "TenantUsageData",
    "TraceSpan",
    "TraceSummary",
    "TraceUsage",
    "TracesPage",
    "UsageGroup",
    "UsageRollup",
    "UsageSummary",
    "UsageTotals",
    "json_dumps",
]


def _exact(value: Any) -> Decimal | None:
    """A float or number given by a caller as the Decimal it was written as (its shortest repr)."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        return Decimal(value)
    return None


class _Result(BaseModel):
    """Base of the Netra-compatible results: frozen, unknown keys ignored (as the server may add some),
    ``total_cost`` (float) and ``total_cost_usd`` (exact Decimal) kept in step when one is given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _money_both_ways(cls, data: Any) -> Any:
        if isinstance(data, dict) and "total_cost_usd" in cls.model_fields:
            exact, approx = data.get("total_cost_usd"), data.get("total_cost")
            if exact is None and approx is not None:
                data = {**data, "total_cost_usd": _exact(approx)}
            elif exact is not None and approx is None:
                data = {**data, "total_cost": float(exact)}
        return data


class SessionUsageData(_Result):
    """Usage of one session in a time window (``GET /usage/sessions/{session_id}``).

    ``total_cost``: float USD (netra-sdk's type); ``total_cost_usd``: the exact Decimal, for invoices."""

    session_id: str
    token_count: int
    request_count: int
    total_cost: float
    total_cost_usd: Decimal = Decimal(0)

    @classmethod
    def from_dict(cls, data: Any) -> SessionUsageData:
        r = Reader(data, "session usage", wire.SessionUsage)
        session_id, tokens, requests = r.str_("session_id"), r.int_("tokenCount"), r.int_("requestsCount")
        cost = r.money("totalCost")
        return cls.model_construct(
            session_id=session_id,
            token_count=tokens,
            request_count=requests,
            total_cost=float(cost),
            total_cost_usd=cost,
        )


class TenantUsageData(_Result):
    """Usage of one tenant in a time window (``GET /usage/tenants/{tenant_id}``).

    ``total_cost``: float USD (netra-sdk's type); ``total_cost_usd``: the exact Decimal, for invoices."""

    tenant_id: str
    organisation_id: str
    token_count: int
    request_count: int
    session_count: int
    total_cost: float
    total_cost_usd: Decimal = Decimal(0)

    @classmethod
    def from_dict(cls, data: Any) -> TenantUsageData:
        r = Reader(data, "tenant usage", wire.TenantUsage)
        tenant_id, org = r.str_("tenant_id"), r.opt_str("organisation_id") or ""
        tokens, requests, sessions = r.int_("tokenCount"), r.int_("requestsCount"), r.int_("sessionsCount")
        cost = r.money("totalCost")
        return cls.model_construct(
            tenant_id=tenant_id,
            organisation_id=org,
            token_count=tokens,
            request_count=requests,
            session_count=sessions,
            total_cost=float(cost),
            total_cost_usd=cost,
        )


class TraceSummary(_Result):
    """One trace in a :class:`TracesPage` (``POST /sdk/traces``). ``kind`` is the root span's type
    (SPAN, GENERATION, TOOL, EMBEDDING, AGENT). ``total_cost``: float USD; ``total_cost_usd``: exact."""

    id: str
    name: str
    kind: str
    latency_ms: int
    start_time: str
    end_time: str
    cursor: str
    organisation_id: str
    project_id: str
    session_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    environment: str | None = None
    models: list[str] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_cost: float | None = None
    completion_tokens_cost: float | None = None
    cached_tokens_cost: float | None = None
    total_cost: float | None = None
    has_pii: bool | None = None
    pii_entities: list[Any] | None = None
    has_violation: bool | None = None
    violations: list[Any] | None = None
    has_error: bool | None = None
    service: str | None = None
    total_cost_usd: Decimal | None = None

    @classmethod
    def from_dict(cls, data: Any) -> TraceSummary:
        r = Reader(data, "trace summary", wire.TraceSummary)
        cost = r.opt_money("total_cost")
        return cls.model_construct(
            id=r.str_("id"),
            name=r.str_("name"),
            kind=r.str_("kind"),
            latency_ms=r.int_("latency_ms"),
            start_time=r.str_("start_time"),
            end_time=r.str_("end_time"),
            cursor=r.str_("cursor"),
            organisation_id=r.opt_str("organisation_id") or "",
            project_id=r.opt_str("project_id") or "",
            session_id=r.opt_str("session_id"),
            tenant_id=r.opt_str("tenant_id"),
            user_id=r.opt_str("user_id"),
            environment=r.opt_str("environment"),
            models=r.opt_str_list("models"),
            prompt_tokens=r.opt_int("prompt_tokens"),
            completion_tokens=r.opt_int("completion_tokens"),
            cached_tokens=r.opt_int("cached_tokens"),
            total_tokens=r.opt_int("total_tokens"),
            prompt_tokens_cost=_opt_float(r.opt_money("prompt_tokens_cost")),
            completion_tokens_cost=_opt_float(r.opt_money("completion_tokens_cost")),
            cached_tokens_cost=_opt_float(r.opt_money("cached_tokens_cost")),
            total_cost=_opt_float(cost),
            has_pii=r.opt_bool("has_pii"),
            pii_entities=r.obj("pii_entities", required=False),
            has_violation=r.opt_bool("has_violation"),
            violations=r.obj("violations", required=False),
            has_error=r.opt_bool("has_error"),
            service=r.opt_str("service"),
            total_cost_usd=cost,
        )


def _opt_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class TracesPage(BaseModel):
    """One page of traces; pass ``next_cursor`` back as ``cursor`` for the next one."""

    model_config = ConfigDict(frozen=True)

    traces: list[TraceSummary]
    has_next_page: bool
    next_cursor: str | None = None


class TraceSpan(_Result):
    """One span in a :class:`SpansPage` (``GET /sdk/traces/{trace_id}/spans``), netra-sdk's fields.

    ``kind`` is the span type (SPAN, GENERATION, TOOL, EMBEDDING, AGENT); ``start_time_ms`` /
    ``end_time_ms`` are milliseconds since the epoch as strings; ``attributes``, ``events``, ``links``
    and ``resources`` are JSON text (:meth:`attributes_dict` and :meth:`events_list` decode them).
    ``total_cost``: float USD; ``total_cost_usd``: exact, ``None`` when the span's price is unknown.
    """

    id: str
    trace_id: str
    name: str
    kind: str
    parent_span_id: str | None = None
    latency_ms: int | None = None
    start_time_ms: str | None = None
    end_time_ms: str | None = None
    organisation_id: str
    project_id: str
    session_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    environment: str | None = None
    model_name: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_cost: float | None = None
    completion_tokens_cost: float | None = None
    cached_tokens_cost: float | None = None
    total_cost: float | None = None
    has_pii: bool | None = None
    pii_entities: list[Any] | None = None
    pii_actions: dict[str, Any] | None = None
    has_violation: bool | None = None
    violations: list[Any] | None = None
    violation_actions: dict[str, Any] | None = None
    status: str | None = None
    attributes: str | None = None
    events: str | None = None
    links: str | None = None
    resources: str | None = None
    metadata: dict[str, Any] | None = None
    has_error: bool | None = None
    created_at: str
    cursor: str
    total_cost_usd: Decimal | None = None

    @classmethod
    def from_dict(cls, data: Any) -> TraceSpan:
        r = Reader(data, "trace span", wire.TraceSpan)
        cost = r.opt_money("total_cost")
        return cls.model_construct(
            id=r.str_("id"),
            trace_id=r.str_("trace_id"),
            name=r.str_("name"),
            kind=r.str_("kind"),
            parent_span_id=r.opt_str("parent_span_id") or None,
            latency_ms=r.opt_int("latency_ms"),
            start_time_ms=r.opt_str("start_time_ms"),
            end_time_ms=r.opt_str("end_time_ms"),
            organisation_id=r.opt_str("organisation_id") or "",
            project_id=r.opt_str("project_id") or "",
            session_id=r.opt_str("session_id"),
            tenant_id=r.opt_str("tenant_id"),
            user_id=r.opt_str("user_id"),
            environment=r.opt_str("environment"),
            model_name=r.opt_str("model_name"),
            prompt_tokens=r.opt_int("prompt_tokens"),
            completion_tokens=r.opt_int("completion_tokens"),
            cached_tokens=r.opt_int("cached_tokens"),
            total_tokens=r.opt_int("total_tokens"),
            prompt_tokens_cost=_opt_float(r.opt_money("prompt_tokens_cost")),
            completion_tokens_cost=_opt_float(r.opt_money("completion_tokens_cost")),
            cached_tokens_cost=_opt_float(r.opt_money("cached_tokens_cost")),
            total_cost=_opt_float(cost),
            has_pii=r.opt_bool("has_pii"),
            pii_entities=r.obj("pii_entities", required=False),
            pii_actions=r.obj("pii_actions", required=False),
            has_violation=r.opt_bool("has_violation"),
            violations=r.obj("violations", required=False),
            violation_actions=r.obj("violation_actions", required=False),
            status=r.opt_str("status"),
            attributes=json_text(r.obj("attributes", required=False)),
            events=json_text(r.obj("events", required=False)),
            links=json_text(r.obj("links", required=False)),
            resources=json_text(r.obj("resources", required=False)),
            metadata=r.obj("metadata", required=False),
            has_error=r.opt_bool("has_error"),
            created_at=r.opt_str("created_at") or "",
            cursor=r.str_("cursor"),
            total_cost_usd=cost,
        )

    def attributes_dict(self) -> dict[str, Any]:
        """The span's attributes, decoded from the JSON text (``{}`` when there are none)."""
        if not self.attributes:
            return {}
        value = json.loads(self.attributes)
        if not isinstance(value, dict):
            raise InvalidResponseError(f"span {self.id} has attributes that are not a JSON object")
        return value

    def events_list(self) -> list[Any]:
        """The span's events, decoded from the JSON text (``[]`` when there are none)."""
        if not self.events:
            return []
        value = json.loads(self.events)
        if not isinstance(value, list):
            raise InvalidResponseError(f"span {self.id} has events that are not a JSON array")
        return value


class SpansPage(BaseModel):
    """One page of spans of a trace; pass ``next_cursor`` back as ``cursor`` for the next one."""

    model_config = ConfigDict(frozen=True)

    spans: list[TraceSpan]
    has_next_page: bool
    next_cursor: str | None = None


# ---------------------------------------------------------------------------------------------------
# Our own routes (not in the Netra SDK): usage summaries and per-span usage of a trace.


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Usage under the billing rule: each unit counted once (``docs/design.md``).

    ``token_count`` is input + output tokens; ``total_cost`` sums the known costs (exact USD, a
    :class:`~decimal.Decimal`) and ``unpriced_count`` says how many counted spans have no known price.
    """

    request_count: int
    token_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_cost: Decimal
    unpriced_count: int
    session_count: int
    span_count: int

    @classmethod
    def _fields_from(cls, r: Reader) -> dict[str, Any]:
        return {
            "request_count": r.int_("requestsCount"),
            "token_count": r.int_("tokenCount"),
            "input_tokens": r.int_("inputTokens"),
            "output_tokens": r.int_("outputTokens"),
            "cached_tokens": r.int_("cachedTokens"),
            "total_cost": r.money("totalCost"),
            "unpriced_count": r.int_("unpricedCount"),
            "session_count": r.int_("sessionsCount"),
            "span_count": r.int_("spanCount"),
        }

    @classmethod
    def from_dict(cls, data: Any) -> UsageTotals:
        return cls(**cls._fields_from(Reader(data, "usage totals", wire.UsageTotals)))


@dataclass(frozen=True, slots=True)
class UsageGroup(UsageTotals):
    """One group of a :class:`UsageSummary`: a tenant id, a model, a user id, a session id or a UTC day."""

    key: str

    @classmethod
    def from_dict(cls, data: Any) -> UsageGroup:
        r = Reader(data, "usage group", wire.UsageGroup)
        return cls(key=r.str_("key"), **cls._fields_from(r))


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Usage in a window grouped by ``group_by``; ``total`` is the whole window (not only the groups shown)."""

    group_by: str
    groups: list[UsageGroup]
    total: UsageTotals

    @classmethod
    def from_dict(cls, data: Any) -> UsageSummary:
        r = Reader(data, "usage summary", wire.UsageSummary)
        return cls(
            group_by=r.str_("groupBy"),
            groups=[UsageGroup.from_dict(g) for g in r.list_("groups")],
            total=UsageTotals.from_dict(r.obj("total")),
        )


@dataclass(frozen=True, slots=True)
class SpanOwnUsage:
    """The usage a span recorded itself (whether or not it counted); ``cost`` is exact USD (a
    :class:`~decimal.Decimal`), ``None`` when its price is unknown."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    cost: Decimal | None

    @classmethod
    def from_dict(cls, data: Any) -> SpanOwnUsage:
        r = Reader(data, "span's own usage", wire.SpanOwnUsage)
        return cls(
            input_tokens=r.int_("inputTokens"),
            output_tokens=r.int_("outputTokens"),
            cached_tokens=r.int_("cachedTokens"),
            total_tokens=r.int_("totalTokens"),
            cost=r.opt_money("cost"),
        )


@dataclass(frozen=True, slots=True)
class UsageRollup:
    """Counted usage of a span and all its descendants: what the span cost (``total_cost``: exact
    USD, a :class:`~decimal.Decimal`, known costs only; ``unpriced_count`` spans had no price)."""

    request_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    total_cost: Decimal
    unpriced_count: int

    @classmethod
    def from_dict(cls, data: Any) -> UsageRollup:
        r = Reader(data, "usage rollup", wire.UsageRollup)
        return cls(
            request_count=r.int_("requestsCount"),
            input_tokens=r.int_("inputTokens"),
            output_tokens=r.int_("outputTokens"),
            cached_tokens=r.int_("cachedTokens"),
            total_tokens=r.int_("totalTokens"),
            total_cost=r.money("totalCost"),
            unpriced_count=r.int_("unpricedCount"),
        )


@dataclass(frozen=True, slots=True)
class SpanUsage:
    """One span of :class:`TraceUsage`: its own usage, whether it ``counted``, and its ``rollup``."""

    span_id: str
    parent_span_id: str | None
    name: str
    span_type: str | None
    model: str | None
    start_time: str | None
    tenant_id: str | None
    has_usage: bool
    covered: bool
    counted: bool
    cost_source: str | None
    cost_unknown: bool
    own: SpanOwnUsage
    rollup: UsageRollup
    #: Distinct versions of this span delivered (1 normally; more when it was sent again with other
    #: content: the first version stored is the span).
    versions: int = 1

    @classmethod
    def from_dict(cls, data: Any) -> SpanUsage:
        r = Reader(data, "span usage", wire.SpanUsage)
        return cls(
            span_id=r.str_("span_id"),
            parent_span_id=r.opt_str("parent_span_id") or None,
            name=r.str_("name"),
            span_type=r.opt_str("span_type"),
            model=r.opt_str("model"),
            start_time=r.opt_str("start_time"),
            tenant_id=r.opt_str("tenant_id"),
            has_usage=bool(r.opt_bool("has_usage")),
            covered=bool(r.opt_bool("covered")),
            counted=bool(r.opt_bool("counted")),
            cost_source=r.opt_str("cost_source"),
            cost_unknown=bool(r.opt_bool("costUnknown")),
            own=SpanOwnUsage.from_dict(r.obj("own")),
            rollup=UsageRollup.from_dict(r.obj("rollup")),
            versions=r.opt_int("versions") or 1,
        )


@dataclass(frozen=True, slots=True)
class TraceUsage:
    """Per-span usage of one trace; ``total`` is the sum of the root spans' rollups."""

    trace_id: str
    spans: list[SpanUsage]
    total: UsageRollup

    @classmethod
    def from_dict(cls, data: Any) -> TraceUsage:
        r = Reader(data, "trace usage", wire.TraceUsage)
        return cls(
            trace_id=r.str_("trace_id"),
            spans=[SpanUsage.from_dict(s) for s in r.list_("spans")],
            total=UsageRollup.from_dict(r.obj("total")),
        )

    def span(self, span_id: str) -> SpanUsage:
        """The span with this id (``KeyError`` if the trace has none)."""
        for s in self.spans:
            if s.span_id == span_id:
                return s
        raise KeyError(span_id)


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Usage of one model in :class:`CallUsage`; ``total_cost`` (exact USD, known prices) and
    ``unpriced_requests`` only when the call asked for ``include_costs``."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    total_tokens: int
    total_cost: Decimal | None = None
    unpriced_requests: int | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ModelUsage:
        r = Reader(data, "model usage", wire.ModelUsage)
        return cls(
            requests=r.int_("requests"),
            prompt_tokens=r.int_("prompt_tokens"),
            completion_tokens=r.int_("completion_tokens"),
            cached_tokens=r.int_("cached_tokens"),
            total_tokens=r.int_("total_tokens"),
            total_cost=r.opt_money("total_cost"),
            unpriced_requests=r.opt_int("unpriced_requests"),
        )


def _by_model(value: Any, what: str) -> dict[str, ModelUsage]:
    if not isinstance(value, dict):
        raise InvalidResponseError(f"the server's {what} is not a JSON object keyed by model: {value!r:.200}")
    return {str(k): ModelUsage.from_dict(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class CallUsage:
    """One call (span) of :class:`CallUsageResult`: ``own`` is what it recorded itself (counted or not),
    ``rollup`` the counted usage of the call and all its descendants (each unit once), both by model."""

    call_id: str
    trace_id: str
    parent_id: str | None
    name: str
    kind: str
    counted: bool
    own: dict[str, ModelUsage]
    rollup: dict[str, ModelUsage]


@dataclass(frozen=True, slots=True)
class CallUsageResult:
    """``POST /trace/usage``: ``call_usage`` keyed by call (span) id, in trace order, depth first;
    ``truncated`` when ``limit`` cut the answer short."""

    call_usage: dict[str, CallUsage]
    truncated: bool

    @classmethod
    def from_dict(cls, data: Any) -> CallUsageResult:
        r = Reader(data, "call usage", wire.CallUsageData)
        raw = r.obj("call_usage")
        if not isinstance(raw, dict):
            raise InvalidResponseError(f"the server's call_usage is not a JSON object: {raw!r:.200}")
        calls: dict[str, CallUsage] = {}
        for call_id, item in raw.items():
            c = Reader(item, f"call usage of {call_id}", wire.CallUsage)
            calls[str(call_id)] = CallUsage(
                call_id=str(call_id),
                trace_id=c.str_("trace_id"),
                parent_id=c.opt_str("parent_id") or None,
                name=c.str_("name"),
                kind=c.opt_str("kind") or "",
                counted=bool(c.opt_bool("counted")),
                own=_by_model(c.obj("own"), f"own usage of call {call_id}"),
                rollup=_by_model(c.obj("rollup"), f"rollup of call {call_id}"),
            )
        return cls(call_usage=calls, truncated=bool(r.opt_bool("truncated")))
