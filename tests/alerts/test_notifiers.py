"""Each contact point type against a real local receiver."""

from __future__ import annotations

import pytest
from netra_server.alerts.model import AlertRule, ContactPoint
from netra_server.alerts.notifiers import NotifyError, notify
from netra_server.alerts.state import AlertEvent, RuleState, step
from netra_server.testing import free_port
from pydantic import TypeAdapter

from .conftest import MailReceiver, WebhookReceiver


def _rule_and_event() -> tuple[AlertRule, AlertEvent]:
    rule = AlertRule.model_validate(
        {
            "id": "rule-1",
            "project_id": "p1",
            "created_at": 1.0,
            "updated_at": 1.0,
            "name": "apex-legal SLA",
            "scope": "trace",
            "metric": "latency",
            "aggregation": "p95",
            "filters": [{"field": "tenant_id", "op": "=", "value": "apex-legal"}],
            "condition": {"op": ">", "threshold": 2000},
        }
    )
    _, event = step(rule, RuleState(rule_id=rule.id), 2750.0, now=1_700_000_000.0)
    assert event is not None
    return rule, event


async def test_generic_webhook_gets_the_alert_as_json(webhook: WebhookReceiver) -> None:
    rule, event = _rule_and_event()
    await notify(
        _contact({"type": "webhook", "url": webhook.url + "/hook", "headers": {"x-token": "t"}}), rule, event
    )
    [request] = webhook.requests
    assert request["path"] == "/hook" and request["headers"]["x-token"] == "t"
    body = request["json"]
    assert body["kind"] == "firing" and body["value"] == 2750.0 and body["threshold"] == 2000.0
    assert body["tenant_id"] == "apex-legal" and body["rule"]["id"] == "rule-1"
    assert body["at"] == "2023-11-14T22:13:20Z"


async def test_slack_webhook_gets_text(webhook: WebhookReceiver) -> None:
    rule, event = _rule_and_event()
    await notify(_contact({"type": "slack", "url": webhook.url + "/slack"}), rule, event)
    assert webhook.bodies("/slack") == [{"text": event.message}]
    assert event.message.startswith("[FIRING] apex-legal SLA")


async def test_email_over_smtp(smtp_server: MailReceiver) -> None:
    rule, event = _rule_and_event()
    contact = _contact(
        {
            "type": "email",
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "from_addr": "netra@example.com",
            "to": ["oncall@example.com", "cto@example.com"],
        }
    )
    await notify(contact, rule, event)
    [message] = smtp_server.messages
    assert smtp_server.envelopes == [("netra@example.com", ["oncall@example.com", "cto@example.com"])]
    assert message["Subject"].startswith("[FIRING] apex-legal SLA")
    assert "Tenant: apex-legal" in message.get_payload()


async def test_failures_raise_notify_error_naming_the_contact(webhook: WebhookReceiver) -> None:
    rule, event = _rule_and_event()
    webhook.status = 503
    with pytest.raises(NotifyError, match="answered 503"):
        await notify(_contact({"type": "webhook", "url": webhook.url}), rule, event)
    closed = free_port()
    with pytest.raises(NotifyError, match=f"email ops@example.com via 127.0.0.1:{closed}"):
        await notify(
            _contact(
                {
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": closed,
                    "from_addr": "a@b",
                    "to": ["ops@example.com"],
                }
            ),
            rule,
            event,
        )


def _contact(body: dict[str, object]) -> ContactPoint:
    return TypeAdapter(ContactPoint).validate_python(body)
