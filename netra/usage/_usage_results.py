"""Results of our own routes (not in the Netra SDK): usage summaries (:class:`UsageSummary`), per-span
usage of a trace (:class:`TraceUsage`) and usage per call (:class:`CallUsageResult`); frozen
dataclasses whose money is exact. Import them from :mod:`netra.usage.models` (or :mod:`netra.usage`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from netra.usage import wire
from netra.usage._read import Reader
from netra.usage.errors import InvalidResponseError


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
