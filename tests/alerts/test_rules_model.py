from __future__ import annotations

import pytest
from netra_server.alerts.model import (
    AlertRule,
    RuleError,
    RuleInput,
    describe_rule,
    parse_filter,
    validation_message,
)
from netra_server.alerts.state import RuleState, step
from pydantic import ValidationError


def _rule(**overrides: object) -> AlertRule:
    body: dict[str, object] = {
        "name": "apex-legal SLA",
        "scope": "trace",
        "metric": "latency",
        "aggregation": "p95",
        "filters": ["tenant_id = apex-legal"],
        "condition": {"op": ">", "threshold": 2000},
        "window_seconds": 300,
        "interval_seconds": 60,
    }
    body.update(overrides)
    return AlertRule(id="r1", project_id="p1", created_at=1.0, updated_at=1.0, **body)  # type: ignore[arg-type]


def test_filters_parse_from_strings_and_describe() -> None:
    rule = _rule()
    assert rule.filters[0].field == "tenant_id" and rule.filters[0].value == "apex-legal"
    assert rule.tenant_filter() == "apex-legal"
    assert describe_rule(rule) == "p95 latency of traces where tenant_id = apex-legal over 5m > 2,000 ms"
    assert parse_filter("model != 'gpt-4o'") == {"field": "model", "op": "!=", "value": "gpt-4o"}


def test_bad_filter_says_what_to_write() -> None:
    with pytest.raises(RuleError, match="FIELD = VALUE"):
        parse_filter("tenant = x")


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"metric": "speed"}, "metric"),
        ({"aggregation": "median"}, "aggregation"),
        ({"condition": {"op": "==", "threshold": 1}}, "condition.op"),
        ({"window_seconds": 1}, "window_seconds"),
        ({"metric": "request_count", "aggregation": "p95"}, "takes aggregation 'count'"),
        (
            {"contact_points": [{"type": "email", "smtp_host": "h", "from_addr": "x", "to": ["a@b"]}]},
            "from_addr",
        ),
        ({"contact_points": [{"type": "pager", "url": "http://x"}]}, "contact_points"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_rules_are_rejected_with_the_field_named(overrides: dict[str, object], needle: str) -> None:
    body: dict[str, object] = {"name": "r", "metric": "latency", "condition": {"op": ">", "threshold": 1}}
    body.update(overrides)
    with pytest.raises(ValidationError) as info:
        RuleInput.model_validate(body)
    assert needle in validation_message(info.value)


def test_fixed_aggregation_is_filled_in() -> None:
    rule = RuleInput.model_validate(
        {"name": "n", "metric": "error_rate", "condition": {"op": ">", "threshold": 5}}
    )
    assert rule.aggregation == "avg"
    assert (
        RuleInput.model_validate(
            {"name": "n", "metric": "cost", "condition": {"op": ">", "threshold": 5}}
        ).aggregation
        == "p95"
    )


def test_state_machine_fires_once_and_resolves_once() -> None:
    rule = _rule()
    state = RuleState(rule_id=rule.id)
    state, event = step(rule, state, 100.0, now=10)
    assert event is None and state.state == "ok" and state.since == 10
    state, event = step(rule, state, 2500.0, now=20)
    assert event is not None and event.kind == "firing" and event.tenant_id == "apex-legal"
    assert "[FIRING] apex-legal SLA" in event.message and "2,500 ms" in event.message
    firing_id = event.id
    for t in (30, 40, 50):
        state, event = step(rule, state, 3000.0, now=t)
        assert event is None and state.state == "firing" and state.since == 20
    state, event = step(rule, state, None, now=60)  # no data in the window ends the breach
    assert event is not None and event.kind == "resolved" and event.episode_id == firing_id
    assert state.state == "ok" and state.episode_id == ""
    state, event = step(rule, state, 10.0, now=70)
    assert event is None


def test_less_than_condition() -> None:
    rule = _rule(metric="request_count", aggregation=None, condition={"op": "<", "threshold": 5})
    _, event = step(rule, RuleState(rule_id="r1"), 0.0, now=1)
    assert event is not None and event.kind == "firing"
