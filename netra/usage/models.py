"""Typed results of the usage client: frozen dataclasses with the Netra SDK's field names.

Each has ``from_dict``, which accepts the wire JSON, ignores keys it does not know, and raises
:class:`~netra.usage.errors.InvalidResponseError` naming the key when a required one is missing or
has the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string")

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self._bad(key, value, "a string or null")

    def _to_int(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self._bad(key, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
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

    def _to_float(self, key: str, value: Any) -> float:
        if isinstance(value, bool):
            raise self._bad(key, value, "a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self._bad(key, value, "a number")

    def float_(self, key: str) -> float:
        value = self._get(key, True)
        if value is None:
            raise self._bad(key, value, "a number")
        return self._to_float(key, value)

    def opt_float(self, key: str) -> float | None:
        value = self._get(key, False)
        return None if value is None else self._to_float(key, value)

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
    """Usage of one session in a time window (``GET /usage/sessions/{session_id}``)."""

    session_id: str
    token_count: int
    request_count: int
    total_cost: float

    @classmethod
    def from_dict(cls, data: Any) -> SessionUsageData:
        r = _Reader(data, "session usage")
        return cls(
            session_id=r.str_("session_id"),
            token_count=r.int_("tokenCount"),
            request_count=r.int_("requestsCount"),
            total_cost=r.float_("totalCost"),
        )


@dataclass(frozen=True, slots=True)
class TenantUsageData:
    """Usage of one tenant in a time window (``GET /usage/tenants/{tenant_id}``)."""

    tenant_id: str
    organisation_id: str | None
    token_count: int
    request_count: int
    session_count: int
    total_cost: float

    @classmethod
    def from_dict(cls, data: Any) -> TenantUsageData:
        r = _Reader(data, "tenant usage")
        return cls(
            tenant_id=r.str_("tenant_id"),
            organisation_id=r.opt_str("organisation_id"),
            token_count=r.int_("tokenCount"),
            request_count=r.int_("requestsCount"),
            session_count=r.int_("sessionsCount"),
            total_cost=r.float_("totalCost"),
        )


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace in a :class:`TracesPage` (``POST /sdk/traces``)."""

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
    total_cost: float | None = None
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
            total_cost=r.opt_float("total_cost"),
            has_error=r.opt_bool("has_error"),
            service=r.opt_str("service"),
        )


@dataclass(frozen=True, slots=True)
class TracesPage:
    """One page of traces; pass ``next_cursor`` back as ``cursor`` for the next one."""

    traces: list[TraceSummary]
    has_next_page: bool
    next_cursor: str | None = None


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """One span in a :class:`SpansPage` (``GET /sdk/traces/{trace_id}/spans``).

    ``attributes`` and ``events`` are JSON text, as on the wire; :meth:`attributes_dict` and
    :meth:`events_list` decode them.
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
    total_cost: float | None = None
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
            total_cost=r.opt_float("total_cost"),
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

    ``token_count`` is input + output tokens; ``total_cost`` sums the known costs and
    ``unpriced_count`` says how many counted spans have no known price.
    """

    request_count: int
    token_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_cost: float
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
            "total_cost": r.float_("totalCost"),
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
    """The usage a span recorded itself (whether or not it counted)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    cost: float | None

    @classmethod
    def from_dict(cls, data: Any) -> SpanOwnUsage:
        r = _Reader(data, "span's own usage")
        return cls(
            input_tokens=r.int_("inputTokens"),
            output_tokens=r.int_("outputTokens"),
            cached_tokens=r.int_("cachedTokens"),
            total_tokens=r.int_("totalTokens"),
            cost=r.opt_float("cost"),
        )


@dataclass(frozen=True, slots=True)
class UsageRollup:
    """Counted usage of a span and all its descendants: what the span cost."""

    request_count: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    total_cost: float
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
            total_cost=r.float_("totalCost"),
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
