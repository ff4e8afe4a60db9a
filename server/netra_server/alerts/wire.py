"""The JSON shapes of the alert routes, for the OpenAPI document (see :mod:`netra_server.wire`).

The routes return their answers as responses themselves; these models only document them, and
``tests/server/test_openapi.py`` checks that they agree with real answers. A rule as answered is the
rule as sent (:class:`~netra_server.alerts.model.RuleInput`, every default filled in) plus its identity,
a readable ``description`` and its current ``state``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

__all__ = [
    "AlertEventOut",
    "AlertEventsResponse",
    "AlertRuleOut",
    "AlertRuleResponse",
    "AlertRulesResponse",
    "ConditionOut",
    "DeletedRule",
    "DeletedRuleResponse",
    "DeliveryOut",
    "EmailContactOut",
    "FilterOut",
    "RuleStateOut",
    "SlackContactOut",
    "UnreadableRuleOut",
    "WebhookContactOut",
]


class FilterOut(BaseModel):
    field: Literal["tenant_id", "user_id", "session_id", "model", "span_name", "environment"]
    op: Literal["=", "!="]
    value: str


class ConditionOut(BaseModel):
    op: Literal[">", "<", ">=", "<="]
    threshold: float = Field(description="In the metric's unit: ms, USD, tokens, percent or a count")


_MASKED_URL = "Masked (write-only secret): the scheme and host only, e.g. https://hooks.slack.com/********"


class WebhookContactOut(BaseModel):
    type: Literal["webhook"]
    url: str = Field(description=_MASKED_URL)
    headers: dict[str, str] = Field(description='Header names; every value reads "********" (write-only)')


class SlackContactOut(BaseModel):
    type: Literal["slack"]
    url: str = Field(description=_MASKED_URL)


class EmailContactOut(BaseModel):
    type: Literal["email"]
    smtp_host: str
    smtp_port: int
    from_addr: str
    to: list[str]
    starttls: bool
    username: str | None
    password: str | None = Field(description='"********" when set (never echoed), else null')


ContactOut = Annotated[WebhookContactOut | SlackContactOut | EmailContactOut, Field(discriminator="type")]


class RuleStateOut(BaseModel):
    state: Literal["ok", "firing"]
    since: float | None = Field(description="When the current state began, seconds since the Unix epoch")
    last_value: float | None = Field(description="The metric at the last evaluation; null: no data")
    last_evaluated: float | None = Field(description="Seconds since the Unix epoch; null: never evaluated")


class AlertRuleOut(BaseModel):
    name: str
    scope: Literal["trace", "span"]
    metric: Literal["latency", "cost", "tokens", "error_rate", "request_count"]
    aggregation: Literal["p50", "p90", "p95", "p99", "avg", "min", "max", "sum", "count"]
    filters: list[FilterOut]
    condition: ConditionOut
    window_seconds: int
    interval_seconds: int
    contact_points: list[ContactOut]
    enabled: bool
    id: str
    project_id: str
    created_at: float = Field(description="Seconds since the Unix epoch")
    updated_at: float = Field(description="Seconds since the Unix epoch")
    owner_tenant: str | None = Field(description="The tenant the creating key was limited to, if any")
    description: str = Field(
        description="The rule in words, e.g. p95 latency of traces where tenant_id = x over 5m > 2000 ms"
    )
    state: RuleStateOut


class UnreadableRuleOut(BaseModel):
    id: str
    error: str = Field(description="Why the stored rule does not load")
    created_at: float = Field(description="Seconds since the Unix epoch")
    updated_at: float = Field(description="Seconds since the Unix epoch")
    fix: str = Field(description="How to remove or replace it")


class AlertRulesResponse(BaseModel):
    data: list[AlertRuleOut]
    unreadable: list[UnreadableRuleOut] = Field(
        default_factory=list,
        description="Stored rules that do not load (skipped by the evaluator); listed for keys not limited to a tenant",
    )


class AlertRuleResponse(BaseModel):
    data: AlertRuleOut


class DeletedRule(BaseModel):
    id: str
    deleted: Literal[True]


class DeletedRuleResponse(BaseModel):
    data: DeletedRule


class DeliveryOut(BaseModel):
    contact: str = Field(description="The contact point in words")
    ok: bool
    attempts: int
    last_error: str | None
    last_at: float = Field(description="Seconds since the Unix epoch")


class AlertEventOut(BaseModel):
    id: str
    rule_id: str
    rule_name: str
    kind: Literal["firing", "resolved"]
    at: float = Field(description="Seconds since the Unix epoch")
    value: float | None = Field(description="The metric's value; null: no data")
    threshold: float
    episode_id: str | None = Field(description="For a resolved event, the id of the firing event it ends")
    tenant_id: str | None = Field(description="The tenant the rule is filtered on, if any")
    message: str
    deliveries: list[DeliveryOut] = Field(description="Notification attempts per contact point")


class AlertEventsResponse(BaseModel):
    data: list[AlertEventOut]
