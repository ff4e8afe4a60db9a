"""Alert rules: the validated model shared by the API, the CLI, the page and the evaluator.

A rule watches one metric of spans (or of whole traces) over a sliding time window, e.g.
"p95 latency of spans with ``tenant_id = apex-legal`` over the last 5 minutes > 2000 ms", and tells
its contact points once when it starts firing and once when it resolves.

The JSON form (what ``POST /api/alerts/rules`` takes and ``GET`` answers)::

    {
      "name": "apex-legal SLA",
      "scope": "trace",                      # "trace" or "span"
      "metric": "latency",                   # latency | cost | tokens | error_rate | request_count
      "aggregation": "p95",                  # p50 | p90 | p95 | p99 | avg | min | max | sum | count
      "filters": [{"field": "tenant_id", "op": "=", "value": "apex-legal"}],
      "condition": {"op": ">", "threshold": 2000},
      "window_seconds": 300,
      "interval_seconds": 60,
      "contact_points": [
        {"type": "webhook", "url": "http://hooks.example/netra"},
        {"type": "slack", "url": "https://hooks.slack.com/services/..."},
        {"type": "email", "smtp_host": "localhost", "smtp_port": 25,
         "from_addr": "netra@example.com", "to": ["oncall@example.com"]}
      ],
      "enabled": true
    }

Units: latency in milliseconds, cost in USD, tokens as input + output tokens, error_rate in percent
(0-100) of spans (or traces) with an error status, request_count as a number of spans (or traces).
``credit_balance`` is not about spans: it is the current credit balance (USD) of the tenant named by
a ``tenant_id = X`` filter (the lowest balance of the project's accounts without one), read from the
credit ledger (``netra_server.credits``); e.g. ``{"metric": "credit_balance", "filters":
["tenant_id = techstart-inc"], "condition": {"op": "<", "threshold": 5}}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AGGREGATIONS",
    "FILTER_FIELDS",
    "METRICS",
    "AlertRule",
    "Condition",
    "ContactPoint",
    "EmailContact",
    "Filter",
    "RuleError",
    "RuleInput",
    "SlackContact",
    "WebhookContact",
    "describe_rule",
    "format_value",
    "parse_filter",
    "validation_message",
]

Scope = Literal["trace", "span"]
Metric = Literal["latency", "cost", "tokens", "error_rate", "request_count", "credit_balance"]
Aggregation = Literal["p50", "p90", "p95", "p99", "avg", "min", "max", "sum", "count"]

METRICS: tuple[str, ...] = ("latency", "cost", "tokens", "error_rate", "request_count", "credit_balance")
AGGREGATIONS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "avg", "min", "max", "sum", "count")
#: Fields a filter can test; ``model`` and ``span_name`` look at the spans (a trace matches when one
#: of its spans does), the others are request context.
FILTER_FIELDS: tuple[str, ...] = ("tenant_id", "user_id", "session_id", "model", "span_name", "environment")

#: The only aggregation that makes sense for these metrics (filled in when omitted).
_FIXED_AGGREGATION = {"error_rate": "avg", "request_count": "count", "credit_balance": "min"}


class RuleError(ValueError):
    """A rule that cannot be accepted; the message says what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    field: Literal["tenant_id", "user_id", "session_id", "model", "span_name", "environment"]
    op: Literal["=", "!="] = "="
    value: Annotated[str, Field(min_length=1, max_length=512)]


class Condition(_Strict):
    op: Literal[">", "<", ">=", "<="]
    threshold: float


class WebhookContact(_Strict):
    """A generic webhook: the alert as a JSON POST (see :mod:`netra_server.alerts.notifiers`)."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]
    headers: dict[str, str] = Field(default_factory=dict)


class SlackContact(_Strict):
    """A Slack-compatible incoming webhook: a JSON POST of ``{"text": ...}``."""

    type: Literal["slack"]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]


class EmailContact(_Strict):
    """An email over SMTP. ``starttls`` upgrades the connection; ``username`` enables AUTH."""

    type: Literal["email"]
    smtp_host: Annotated[str, Field(min_length=1)]
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    from_addr: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    to: Annotated[list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]], Field(min_length=1)]
    starttls: bool = False
    username: str | None = None
    password: str | None = None


ContactPoint = Annotated[WebhookContact | SlackContact | EmailContact, Field(discriminator="type")]


class RuleInput(_Strict):
    """What a client sends to create or replace a rule."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    scope: Scope = "span"
    metric: Metric
    aggregation: Aggregation | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    condition: Condition
    window_seconds: Annotated[int, Field(ge=10, le=7 * 86400)] = 300
    interval_seconds: Annotated[int, Field(ge=1, le=86400)] = 60
    contact_points: list[ContactPoint] = Field(default_factory=list, max_length=20)
    enabled: bool = True

    @field_validator("filters", mode="before")
    @classmethod
    def _filters_from_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [parse_filter(v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _check_aggregation(self) -> RuleInput:
        fixed = _FIXED_AGGREGATION.get(self.metric)
        if self.aggregation is None:
            object.__setattr__(self, "aggregation", fixed or "p95")
        elif fixed and self.aggregation != fixed:
            raise ValueError(
                f"metric {self.metric!r} takes aggregation {fixed!r} (or none), not {self.aggregation!r}"
            )
        if self.metric == "credit_balance" and any(f.field != "tenant_id" or f.op != "=" for f in self.filters):
            raise ValueError("a credit_balance rule takes only a 'tenant_id = X' filter (none: the lowest balance)")
        return self


class AlertRule(RuleInput):
    """A stored rule: the input plus its identity within a project."""

    id: str
    project_id: str
    created_at: float
    updated_at: float
    #: The tenant the creating key was limited to, if any (such a key sees and edits only these rules).
    owner_tenant: str | None = None

    def tenant_filter(self) -> str | None:
        """The tenant an ``=`` filter pins this rule to, if any."""
        for f in self.filters:
            if f.field == "tenant_id" and f.op == "=":
                return f.value
        return None


_FILTER_RE = re.compile(r"^\s*([a-z_]+)\s*(!=|=)\s*(.+?)\s*$")


def parse_filter(text: str) -> dict[str, str]:
    """``"tenant_id = apex-legal"`` → ``{"field": "tenant_id", "op": "=", "value": "apex-legal"}``."""
    m = _FILTER_RE.match(text)
    if not m or m.group(1) not in FILTER_FIELDS:
        raise RuleError(
            f"bad filter {text!r}: write FIELD = VALUE or FIELD != VALUE with FIELD one of {', '.join(FILTER_FIELDS)}"
        )
    return {"field": m.group(1), "op": m.group(2), "value": m.group(3).strip("'\"")}


def validation_message(exc: ValidationError) -> str:
    """One readable line per problem, e.g. ``condition.threshold: Input should be a valid number``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def describe_rule(rule: RuleInput) -> str:
    """``p95 latency of traces where tenant_id = apex-legal over 5m > 2000 ms``."""
    if rule.metric == "credit_balance":
        who = " and ".join(f"{f.field} {f.op} {f.value}" for f in rule.filters) or "the lowest of all tenants"
        return f"credit balance of {who} {rule.condition.op} {format_value(rule.metric, rule.condition.threshold)}"
    what = {"trace": "traces", "span": "spans"}[rule.scope]
    where = " and ".join(f"{f.field} {f.op} {f.value}" for f in rule.filters)
    window = _human_seconds(rule.window_seconds)
    metric = rule.metric.replace("_", " ")
    head = f"{metric}" if rule.metric in _FIXED_AGGREGATION else f"{rule.aggregation} {metric}"
    text = f"{head} of {what}" + (f" where {where}" if where else "") + f" over {window}"
    return f"{text} {rule.condition.op} {format_value(rule.metric, rule.condition.threshold)}"


def format_value(metric: str, value: float | None) -> str:
    """A metric value with its unit, for messages and the page."""
    if value is None:
        return "no data"
    if metric == "latency":
        return f"{value:,.0f} ms"
    if metric in ("cost", "credit_balance"):
        if metric == "credit_balance" and value < 0:
            return "-" + format_value(metric, -value)
        return f"${value:,.6f}".rstrip("0").rstrip(".") if value else "$0"
    if metric == "error_rate":
        return f"{value:.2f} %"
    return f"{value:,.0f}" + (" tokens" if metric == "tokens" else "")


def _human_seconds(s: int) -> str:
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"
