"""Contact points: a generic webhook (JSON POST), a Slack-compatible webhook (``{"text": ...}``) and
email over SMTP (``smtplib`` in a worker thread).

The generic webhook body::

    {"kind": "firing" | "resolved", "rule": {"id", "name", "scope", "metric", "aggregation",
     "filters", "condition", "window_seconds"}, "value": 2431.0, "threshold": 2000.0,
     "tenant_id": "apex-legal", "at": "2025-01-01T12:00:00Z", "event_id": "...", "episode_id": "...",
     "message": "[FIRING] ..."}

Every notifier raises :class:`NotifyError` on failure (the evaluator logs it and retries on its next
evaluation); nothing here raises anything else.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx

from .model import AlertRule, ContactPoint, EmailContact, SlackContact, WebhookContact, mask_url, redact_urls
from .state import AlertEvent

__all__ = ["NotifyError", "contact_label", "notify", "webhook_payload"]

_TIMEOUT = httpx.Timeout(10.0)


class NotifyError(Exception):
    """A contact point could not be told; the message says which and why."""


def contact_label(contact: ContactPoint) -> str:
    """``webhook https://host/********``, ``email a@b, c@d`` — for logs and the page (never a secret:
    a URL shows its scheme and host only)."""
    if isinstance(contact, EmailContact):
        return f"email {', '.join(contact.to)} via {contact.smtp_host}:{contact.smtp_port}"
    return f"{contact.type} {mask_url(contact.url)}"


def webhook_payload(rule: AlertRule, event: AlertEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "event_id": event.id,
        "episode_id": event.episode_id or event.id,
        "at": _iso(event.at),
        "value": event.value,
        "threshold": event.threshold,
        "tenant_id": event.tenant_id or None,
        "message": event.message,
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "scope": rule.scope,
            "metric": rule.metric,
            "aggregation": rule.aggregation,
            "filters": [f.model_dump() for f in rule.filters],
            "condition": rule.condition.model_dump(),
            "window_seconds": rule.window_seconds,
        },
    }


async def notify(contact: ContactPoint, rule: AlertRule, event: AlertEvent) -> None:
    """Tell one contact point about ``event``; raises :class:`NotifyError` if it could not."""
    try:
        if isinstance(contact, WebhookContact):
            await _post(contact.url, webhook_payload(rule, event), contact.headers)
        elif isinstance(contact, SlackContact):
            await _post(contact.url, {"text": event.message}, {})
        else:
            await asyncio.to_thread(_send_mail, contact, event)
    except NotifyError:
        raise
    except Exception as exc:  # network, SMTP, TLS: all reported the same way
        raise NotifyError(f"{contact_label(contact)}: {type(exc).__name__}: {redact_urls(str(exc))}") from exc


async def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False) as client:
        response = await client.post(url, json=body, headers={"user-agent": "netra-alerts", **headers})
    if response.status_code >= 300:
        raise NotifyError(f"POST {mask_url(url)} answered {response.status_code}: {redact_urls(response.text[:200])}")


def _send_mail(contact: EmailContact, event: AlertEvent) -> None:
    msg = EmailMessage()
    msg["Subject"] = event.message[:200]
    msg["From"] = contact.from_addr
    msg["To"] = ", ".join(contact.to)
    msg.set_content(
        f"{event.message}\n\nRule: {event.rule_name} ({event.rule_id})\nValue: {event.value}\n"
        f"Threshold: {event.threshold}\nTenant: {event.tenant_id or '-'}\nAt: {_iso(event.at)}\n"
    )
    with smtplib.SMTP(contact.smtp_host, contact.smtp_port, timeout=10) as smtp:
        if contact.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if contact.username:
            smtp.login(contact.username, contact.password or "")
        smtp.send_message(msg)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
