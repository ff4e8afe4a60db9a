"""The Netra-compatible results of the usage client (:class:`SessionUsageData`, :class:`TenantUsageData`,
:class:`TraceSummary`, :class:`TracesPage`, :class:`TraceSpan`, :class:`SpansPage`): pydantic models with
the field names and types of the published ``netra-sdk``. Import them from :mod:`netra.usage.models`
(or :mod:`netra.usage`), whose docstring describes money and parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from netra.usage import wire
from netra.usage._read import Reader, json_text
from netra.usage.errors import InvalidResponseError


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
            **_context_and_usage(r, cost),
            models=r.opt_str_list("models"),
            service=r.opt_str("service"),
        )


def _context_and_usage(r: Reader, cost: Decimal | None) -> dict[str, Any]:
    """The fields a trace summary and a span share: request context, tokens and their cost, the PII,
    violation and error flags; ``total_cost`` (float) beside ``total_cost_usd`` (exact)."""
    return {
        "organisation_id": r.opt_str("organisation_id") or "",
        "project_id": r.opt_str("project_id") or "",
        "session_id": r.opt_str("session_id"),
        "tenant_id": r.opt_str("tenant_id"),
        "user_id": r.opt_str("user_id"),
        "environment": r.opt_str("environment"),
        "prompt_tokens": r.opt_int("prompt_tokens"),
        "completion_tokens": r.opt_int("completion_tokens"),
        "cached_tokens": r.opt_int("cached_tokens"),
        "total_tokens": r.opt_int("total_tokens"),
        "prompt_tokens_cost": _opt_float(r.opt_money("prompt_tokens_cost")),
        "completion_tokens_cost": _opt_float(r.opt_money("completion_tokens_cost")),
        "cached_tokens_cost": _opt_float(r.opt_money("cached_tokens_cost")),
        "total_cost": _opt_float(cost),
        "has_pii": r.opt_bool("has_pii"),
        "pii_entities": r.obj("pii_entities", required=False),
        "has_violation": r.opt_bool("has_violation"),
        "violations": r.obj("violations", required=False),
        "has_error": r.opt_bool("has_error"),
        "total_cost_usd": cost,
    }


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
            **_context_and_usage(r, cost),
            model_name=r.opt_str("model_name"),
            pii_actions=r.obj("pii_actions", required=False),
            violation_actions=r.obj("violation_actions", required=False),
            status=r.opt_str("status"),
            attributes=json_text(r.obj("attributes", required=False)),
            events=json_text(r.obj("events", required=False)),
            links=json_text(r.obj("links", required=False)),
            resources=json_text(r.obj("resources", required=False)),
            metadata=r.obj("metadata", required=False),
            created_at=r.opt_str("created_at") or "",
            cursor=r.str_("cursor"),
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
