"""The per-rule state machine: ``ok`` → ``firing`` (notify once) → ``ok`` again (a ``resolved`` event,
notify once). Pure functions over plain values, so the evaluator, the store and the tests share them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Literal

from .model import AlertRule, describe_rule, format_value

__all__ = ["AlertEvent", "RuleState", "breached", "step"]

StateName = Literal["ok", "firing"]
EventKind = Literal["firing", "resolved"]


@dataclass(frozen=True)
class RuleState:
    rule_id: str
    state: StateName = "ok"
    #: When the current state began (seconds since the epoch); 0 for a rule never evaluated.
    since: float = 0.0
    last_value: float | None = None
    last_evaluated: float = 0.0
    #: The id of the ``firing`` event of the current episode ("" when ok).
    episode_id: str = ""


@dataclass(frozen=True)
class AlertEvent:
    """One row of alert history: a rule started firing, or resolved."""

    id: str
    rule_id: str
    project_id: str
    rule_name: str
    kind: EventKind
    at: float
    value: float | None
    threshold: float
    #: The firing event this one resolves ("" for a firing event).
    episode_id: str
    #: The tenant the rule is filtered on, if any.
    tenant_id: str
    message: str


def breached(rule: AlertRule, value: float | None) -> bool:
    """Whether ``value`` meets the rule's condition. No data (None) never breaches."""
    if value is None:
        return False
    op, t = rule.condition.op, rule.condition.threshold
    if op == ">":
        return value > t
    if op == "<":
        return value < t
    if op == ">=":
        return value >= t
    return value <= t


def step(
    rule: AlertRule, state: RuleState, value: float | None, now: float
) -> tuple[RuleState, AlertEvent | None]:
    """The next state after one evaluation that measured ``value``, and the event to record, if any."""
    hit = breached(rule, value)
    evaluated = replace(state, last_value=value, last_evaluated=now)
    if hit and state.state == "ok":
        event = _event(rule, "firing", value, now, episode_id="")
        return replace(evaluated, state="firing", since=now, episode_id=event.id), event
    if not hit and state.state == "firing":
        event = _event(rule, "resolved", value, now, episode_id=state.episode_id)
        return replace(evaluated, state="ok", since=now, episode_id=""), event
    if state.since == 0.0:
        evaluated = replace(evaluated, since=now)
    return evaluated, None


def _event(rule: AlertRule, kind: EventKind, value: float | None, now: float, episode_id: str) -> AlertEvent:
    what = describe_rule(rule)
    measured = format_value(rule.metric, value)
    if kind == "firing":
        message = f"[FIRING] {rule.name}: {what} (now {measured})"
    else:
        message = f"[RESOLVED] {rule.name}: no longer {what} (now {measured})"
    return AlertEvent(
        id=uuid.uuid4().hex,
        rule_id=rule.id,
        project_id=rule.project_id,
        rule_name=rule.name,
        kind=kind,
        at=now,
        value=value,
        threshold=rule.condition.threshold,
        episode_id=episode_id,
        tenant_id=rule.tenant_filter() or "",
        message=message,
    )
