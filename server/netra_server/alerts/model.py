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
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AGGREGATIONS",
    "FILTER_FIELDS",
    "MASK",
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
    "mask_contact",
    "mask_url",
    "parse_filter",
    "redact_urls",
    "restore_secrets",
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
    #: A finite number: ``inf``/``NaN`` are refused (JSON cannot hold them; stored, they read back as null).
    threshold: Annotated[float, Field(allow_inf_nan=False)]


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


# --------------------------------------------------------------------------------------------------
# Contact-point secrets are write-only: a webhook's or Slack URL's path and query (where such services
# put their token), every webhook header value and the SMTP password are never answered to a reader,
# whatever its role. An update may send the masked values back unchanged: they keep the stored secret.

#: What a secret reads as.
MASK = "********"


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/x`` -> ``https://hooks.slack.com/********``: the scheme
    and host (to tell contact points apart) without credentials, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}/{MASK}"


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def redact_urls(text: str) -> str:
    """``text`` with every URL in it masked (delivery labels and errors name the contact point)."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def mask_contact(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact point (as JSON) with its secrets masked, for any reader."""
    out = dict(contact)
    if out.get("type") in ("webhook", "slack") and isinstance(out.get("url"), str):
        out["url"] = mask_url(out["url"])
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k: MASK for k in out["headers"]}
    if out.get("password"):
        out["password"] = MASK
    return out


def _masked(contact: ContactPoint) -> bool:
    if isinstance(contact, EmailContact):
        return contact.password == MASK
    if MASK in contact.url:
        return True
    return isinstance(contact, WebhookContact) and any(v == MASK for v in contact.headers.values())


def _same_contact(new: ContactPoint, old: ContactPoint) -> bool:
    """Whether ``new`` (possibly with masked secrets) names the stored contact point ``old``."""
    if isinstance(new, EmailContact) and isinstance(old, EmailContact):
        return (new.smtp_host, new.smtp_port, new.username) == (old.smtp_host, old.smtp_port, old.username)
    if isinstance(new, WebhookContact | SlackContact) and isinstance(old, WebhookContact | SlackContact):
        return new.type == old.type and new.url in (old.url, mask_url(old.url))
    return False


def restore_secrets(rule: RuleInput, existing: RuleInput | None) -> RuleInput:
    """``rule`` with each masked secret (as answered by a read) replaced by the stored one of
    ``existing``; raises :class:`RuleError` for a masked value that matches no stored contact point."""
    if not any(_masked(c) for c in rule.contact_points):
        return rule
    old = list(existing.contact_points) if existing is not None else []
    restored: list[ContactPoint] = []
    for i, c in enumerate(rule.contact_points):
        if not _masked(c):
            restored.append(c)
            continue
        # the stored contact at the same position first, then any other that matches
        candidates = ([old[i]] if i < len(old) else []) + old
        match = next((o for o in candidates if _same_contact(c, o)), None)
        if match is None:
            raise RuleError(
                f"contact_points[{i}] holds the mask {MASK!r} but matches no stored contact point of this "
                "rule; send the real URL, header value or password"
            )
        if isinstance(c, EmailContact) and isinstance(match, EmailContact):
            restored.append(c.model_copy(update={"password": match.password}))
        elif isinstance(c, WebhookContact | SlackContact) and isinstance(match, WebhookContact | SlackContact):
            update: dict[str, Any] = {"url": match.url if MASK in c.url else c.url}
            if isinstance(c, WebhookContact):
                stored = {k.lower(): v for k, v in (match.headers if isinstance(match, WebhookContact) else {}).items()}
                headers = {}
                for k, v in c.headers.items():
                    if v == MASK:
                        if k.lower() not in stored:
                            raise RuleError(
                                f"contact_points[{i}].headers.{k} is masked but the stored contact point has no "
                                "such header; send its real value"
                            )
                        v = stored[k.lower()]
                    headers[k] = v
                update["headers"] = headers
            restored.append(c.model_copy(update=update))
    return rule.model_copy(update={"contact_points": restored})
