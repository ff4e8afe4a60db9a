"""Typed results of the usage client: frozen dataclasses with the Netra SDK's field names.

Each has ``from_dict``, which accepts the wire JSON, ignores keys it does not know, and raises
:class:`~netra.usage.errors.InvalidResponseError` naming the key when a required one is missing or
has the wrong type.

Money (``total_cost``, ``cost``) is a :class:`decimal.Decimal` in USD, exactly the digits the server
sent: the server keeps costs as decimals and writes them as JSON numbers with their exact digits,
and the client reads those numbers as ``Decimal`` (``json.loads(..., parse_float=Decimal)``), never
as ``float``. A sum of floats drifts (``0.1 + 0.2 != 0.3``) and a float keeps only about 15
significant digits, so a bill added up from float costs could be off by a fraction of a cent; a sum
of these Decimals is exact. ``None`` where a cost is unknown (never 0). Counts stay ``int``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from netra.usage.errors import InvalidResponseError

__all__ = [
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
]

_MISSING: Any = object()


class _Reader:
    """Reads typed values out of one JSON object, naming the object and key in errors."""

    __slots__ = ("_data", "_what")

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidResponseError(f"expected a JSON object for {what}, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._what = what

    def _get(self, key: str, required: bool) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise InvalidResponseError(
                    f"the server's {self._what} has no {key!r} key (keys: {sorted(self._data)})"
                )
            return None
        return value

    def _bad(self, key: str, value: Any, expected: str) -> InvalidResponseError:
        return InvalidResponseError(f"the server's {self._what} has {key}={value!r}; expected {expected}")

    def str_(self, key: str) -> str:
        value = self._get(key, True)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string")

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string or null")

    def _to_int(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self._bad(key, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise self._bad(key, value, "an integer")

    def int_(self, key: str) -> int:
        value = self._get(key, True)
        if value is None:
            raise self._bad(key, value, "an integer")
        return self._to_int(key, value)

    def opt_int(self, key: str) -> int | None:
        value = self._get(key, False)
        return None if value is None else self._to_int(key, value)

    def _to_money(self, key: str, value: Any) -> Decimal:
        """A JSON number (read as ``Decimal`` or ``int``) or a decimal string, as an exact Decimal."""
        if isinstance(value, Decimal):
            money = value
        elif isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        elif isinstance(value, str):
            try:
                money = Decimal(value.strip())
            except InvalidOperation:
                raise self._bad(key, value, "an amount of money (a decimal number)") from None
        elif isinstance(value, float) and math.isfinite(value):
            # A float handed to from_dict by a caller (the client itself never makes one): the
            # decimal it was written as (its shortest repr), not its binary expansion.
            money = Decimal(repr(value))
        else:
            raise self._bad(key, value, "an amount of money (a decimal number)")
        if not money.is_finite():
            raise self._bad(key, value, "a finite amount of money")
        return money

    def money(self, key: str) -> Decimal:
        value = self._get(key, True)
        if value is None:
            raise self._bad(key, value, "an amount of money (a decimal number)")
        return self._to_money(key, value)

    def opt_money(self, key: str) -> Decimal | None:
        value = self._get(key, False)
        return None if value is None else self._to_money(key, value)

    def opt_bool(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is None or isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise self._bad(key, value, "true, false or null")

    def opt_str_list(self, key: str) -> list[str] | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self._bad(key, value, "a list of strings or null")

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, True)
        if isinstance(value, list):
            return value
        raise self._bad(key, value, "a list")

    def obj(self, key: str, required: bool = True) -> Any:
        return self._get(key, required)


@dataclass(frozen=True, slots=True)
class SessionUsageData:
    """Usage of one session in a time window (``GET /usage/sessions/{session_id}``); ``total_cost``
    is exact USD (a :class:`~decimal.Decimal`)."""

    session_id: str
    token_count: int
    request_count: int
    total_cost: Decimal

    @classmethod
    def from_dict(cls, data: Any) -> SessionUsageData:
        r = _Reader(data, "session usage")
        return cls(
            session_id=r.str_("session_id"),
            token_count=r.int_("tokenCount"),
            request_count=r.int_("requestsCount"),
            total_cost=r.money("totalCost"),
        )


@dataclass(frozen=True, slots=True)
class TenantUsageData:
    """Usage of one tenant in a time window (``GET /usage/tenants/{tenant_id}``); ``total_cost`` is
    exact USD (a :class:`~decimal.Decimal`)."""

    tenant_id: str
    organisation_id: str | None
    token_count: int
    request_count: int
    session_count: int
    total_cost: Decimal

    @classmethod
    def from_dict(cls, data: Any) -> TenantUsageData:
        r = _Reader(data, "tenant usage")
        return cls(
            tenant_id=r.str_("tenant_id"),
            organisation_id=r.opt_str("organisation_id"),
            token_count=r.int_("tokenCount"),
            request_count=r.int_("requestsCount"),
            session_count=r.int_("sessionsCount"),
            total_cost=r.money("totalCost"),
        )


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace in a :class:`TracesPage` (``POST /sdk/traces``); ``total_cost`` is exact USD (a
    :class:`~decimal.Decimal`), ``None`` if the server sent none."""

    id: str
    name: str
    kind: str
    latency_ms: int
    start_time: str
    end_time: str
    cursor: str
    organisation_id: str | None
    project_id: str | None
    session_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    environment: str | None = None
    models: list[str] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    total_cost: Decimal | None = None
    has_error: bool | None = None
    service: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> TraceSummary:
        r = _Reader(data, "trace summary")
        return cls(
            id=r.str_("id"),
            name=r.str_("name"),
            kind=r.str_("kind"),
            latency_ms=r.int_("latency_ms"),
            start_time=r.str_("start_time"),
            end_time=r.str_("end_time"),
            cursor=r.str_("cursor"),
            organisation_id=r.opt_str("organisation_id"),
            project_id=r.opt_str("project_id"),
            session_id=r.opt_str("session_id"),
            tenant_id=r.opt_str("tenant_id"),
            user_id=r.opt_str("user_id"),
            environment=r.opt_str("environment"),
            models=r.opt_str_list("models"),
            prompt_tokens=r.opt_int("prompt_tokens"),
            completion_tokens=r.opt_int("completion_tokens"),
            cached_tokens=r.opt_int("cached_tokens"),
            total_tokens=r.opt_int("total_tokens"),
            total_cost=r.opt_money("total_cost"),
            has_error=r.opt_bool("has_error"),
            service=r.opt_str("service"),
        )


@dataclass(frozen=True, slots=True)
class TracesPage:
    """One page of traces; pass ``next_cursor`` back as ``cursor`` for the next one."""

    traces: list[TraceSummary]
    has_next_page: bool
    next_cursor: str | None = None


def _plain_number(value: Any) -> float:
    """For ``json.dumps``: a number the client read as ``Decimal`` (not money) back as the float it was."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_dumps(value: Any) -> str:
    """JSON text of a value the client parsed (its numbers as they were before it read them as Decimal)."""
    return json.dumps(value, default=_plain_number)


def _json_text(value: Any) -> str | None:
    """Attributes / events as JSON text: as sent when the server sends text (this server does), else
    re-encoded by :func:`json_dumps`."""
    if value is None or isinstance(value, str):
        return value
    return json_dumps(value)


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One span in a :class:`SpansPage` (``GET /sdk/traces/{trace_id}/spans``).

    ``attributes`` and ``events`` are JSON text, as on the wire; :meth:`attributes_dict` and
    :meth:`events_list` decode them. ``total_cost`` is exact USD (a :class:`~decimal.Decimal`),
    ``None`` when the span's price is unknown.
    """

    id: str
    trace_id: str
    name: str
    kind: str
    cursor: str
    created_at: str | None
    organisation_id: str | None
    project_id: str | None
    parent_span_id: str | None = None
    latency_ms: int | None = None
    start_time_ms: str | None = None
    end_time_ms: str | None = None
    session_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    environment: str | None = None
    model_name: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    total_cost: Decimal | None = None
    status: str | None = None
    attributes: str | None = None
    events: str | None = None
    has_error: bool | None = None

    @classmethod
    def from_dict(cls, data: Any) -> TraceSpan:
        r = _Reader(data, "trace span")
        return cls(
            id=r.str_("id"),
            trace_id=r.str_("trace_id"),
            name=r.str_("name"),
            kind=r.str_("kind"),
            cursor=r.str_("cursor"),
            created_at=r.opt_str("created_at"),
            organisation_id=r.opt_str("organisation_id"),
            project_id=r.opt_str("project_id"),
            parent_span_id=r.opt_str("parent_span_id") or None,
            latency_ms=r.opt_int("latency_ms"),
            start_time_ms=r.opt_str("start_time_ms"),
            end_time_ms=r.opt_str("end_time_ms"),
            session_id=r.opt_str("session_id"),
            tenant_id=r.opt_str("tenant_id"),
            user_id=r.opt_str("user_id"),
            environment=r.opt_str("environment"),
            model_name=r.opt_str("model_name"),
            prompt_tokens=r.opt_int("prompt_tokens"),
            completion_tokens=r.opt_int("completion_tokens"),
            cached_tokens=r.opt_int("cached_tokens"),
            total_tokens=r.opt_int("total_tokens"),
            total_cost=r.opt_money("total_cost"),
            status=r.opt_str("status"),
            attributes=_json_text(r.obj("attributes", required=False)),
            events=_json_text(r.obj("events", required=False)),
            has_error=r.opt_bool("has_error"),
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


@dataclass(frozen=True, slots=True)
class SpansPage:
    """One page of spans of a trace; pass ``next_cursor`` back as ``cursor`` for the next one."""

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
    def _fields_from(cls, r: _Reader) -> dict[str, Any]:
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
        return cls(**cls._fields_from(_Reader(data, "usage totals")))


@dataclass(frozen=True, slots=True)
class UsageGroup(UsageTotals):
    """One group of a :class:`UsageSummary`: a tenant id, a model, a user id, a session id or a UTC day."""

    key: str

    @classmethod
    def from_dict(cls, data: Any) -> UsageGroup:
        r = _Reader(data, "usage group")
        return cls(key=r.str_("key"), **cls._fields_from(r))


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Usage in a window grouped by ``group_by``; ``total`` is the whole window (not only the groups shown)."""

    group_by: str
    groups: list[UsageGroup]
    total: UsageTotals

    @classmethod
    def from_dict(cls, data: Any) -> UsageSummary:
        r = _Reader(data, "usage summary")
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
        r = _Reader(data, "span's own usage")
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
        r = _Reader(data, "usage rollup")
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

    @classmethod
    def from_dict(cls, data: Any) -> SpanUsage:
        r = _Reader(data, "span usage")
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
        )


@dataclass(frozen=True, slots=True)
class TraceUsage:
    """Per-span usage of one trace; ``total`` is the sum of the root spans' rollups."""

    trace_id: str
    spans: list[SpanUsage]
    total: UsageRollup

    @classmethod
    def from_dict(cls, data: Any) -> TraceUsage:
        r = _Reader(data, "trace usage")
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
