"""Alert rules end to end: a real server, spans through the real OTLP exporter, a real webhook receiver
and a real SMTP server; the evaluator runs inside the server as in production (1 s tick)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from netra_server.alerts.cli import main as alerts_cli
from netra_server.alerts.client import AlertsClient, AlertsError, create_rule
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import set_span_in_context

from netra import semconv

from .conftest import MailReceiver, WebhookReceiver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("alerts-e2e")) as srv:
        yield srv


def _export(srv: RunningServer, traces: list[tuple[str, float, float]]) -> None:
    """Each (tenant, start offset from now in s, root duration in ms) as a 2-span trace over OTLP/HTTP."""
    exporter = OTLPSpanExporter(endpoint=srv.otlp_endpoint, headers={"x-api-key": srv.api_key})
    provider = TracerProvider(resource=Resource.create({"service.name": "meetingmind"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("alerts-test")
    now = time.time_ns()
    for tenant, offset, ms in traces:
        t0 = now + int(offset * 1e9)
        root = tracer.start_span("meeting-summarization", start_time=t0, attributes={semconv.TENANT_ID: tenant})
        llm = tracer.start_span(
            "chat gpt-4o-mini", context=set_span_in_context(root), start_time=t0 + 1_000_000,
            attributes={semconv.TENANT_ID: tenant, semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                        semconv.GEN_AI_USAGE_INPUT_TOKENS: 120, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 40},
        )
        llm.end(end_time=t0 + int(ms * 0.9e6))
        root.end(end_time=t0 + int(ms * 1e6))
    provider.shutdown()


def _tier_rule(tenant: str, threshold: float, contacts: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": f"{tenant} SLA", "scope": "trace", "metric": "latency", "aggregation": "p95",
        "filters": [f"tenant_id = {tenant}"], "condition": {"op": ">", "threshold": threshold},
        "window_seconds": 10, "interval_seconds": 1, "contact_points": contacts,
    }


@pytest.mark.slow
def test_latency_breach_of_one_tenant_fires_once_and_resolves(
    server: RunningServer, webhook: WebhookReceiver, smtp_server: MailReceiver, wait_for: Callable[..., None]
) -> None:
    contacts: list[dict[str, object]] = [
        {"type": "webhook", "url": webhook.url + "/generic"},
        {"type": "slack", "url": webhook.url + "/slack"},
        {"type": "email", "smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
         "from_addr": "netra@example.com", "to": ["oncall@example.com"]},
    ]
    apex = create_rule(server.base_url, server.api_key, _tier_rule("apex-legal", 2000, contacts))
    stratex = create_rule(server.base_url, server.api_key, _tier_rule("stratex-consulting", 3000, contacts))
    # apex-legal breaches its 2 s target; stratex stays under 3 s; techstart is slow but has no rule
    _export(server, [("apex-legal", -4, 2600)] * 3 + [("stratex-consulting", -4, 1200)] * 3
            + [("techstart-inc", -4, 6000)] * 3)
    wait_for(lambda: len(webhook.bodies("/generic")) >= 1 and len(smtp_server.messages) >= 1, what="the firing alert")
    [fired] = webhook.bodies("/generic")
    assert fired["kind"] == "firing" and fired["tenant_id"] == "apex-legal" and fired["rule"]["id"] == apex["id"]
    assert fired["value"] == pytest.approx(2600, abs=1)
    assert [b["text"] for b in webhook.bodies("/slack")] == [fired["message"]]
    assert smtp_server.messages[0]["Subject"].startswith("[FIRING] apex-legal SLA")

    # fast apex-legal traces now; the slow ones leave the 10 s window: resolved, told once
    _export(server, [("apex-legal", 0, 300)] * 3)
    wait_for(lambda: len(webhook.bodies("/generic")) >= 2, timeout=30, what="the resolved alert")
    time.sleep(2.5)  # a few more evaluations: nothing else may be sent
    bodies = webhook.bodies("/generic")
    assert [(b["kind"], b["tenant_id"]) for b in bodies] == [("firing", "apex-legal"), ("resolved", "apex-legal")]
    assert bodies[1]["episode_id"] == fired["event_id"]
    assert len(webhook.bodies("/slack")) == 2
    assert [m["Subject"].split(" ")[0] for m in smtp_server.messages] == ["[FIRING]", "[RESOLVED]"]

    with AlertsClient(server.base_url, server.api_key) as client:
        history = client.history()
        assert [(e["kind"], e["rule_id"]) for e in history] == [("resolved", apex["id"]), ("firing", apex["id"])]
        assert all(d["ok"] and d["attempts"] == 1 for e in history for d in e["deliveries"])
        assert len(history[0]["deliveries"]) == 3
        states = {r["id"]: r["state"] for r in client.list_rules()}
        assert states[apex["id"]]["state"] == "ok" and states[stratex["id"]]["state"] == "ok"
        assert states[stratex["id"]]["last_evaluated"] is not None
        for rule in (apex, stratex):
            client.delete_rule(str(rule["id"]))


def test_rules_api_validates_and_isolates_tenants(server: RunningServer) -> None:
    with server.client() as c:
        r = c.post("/api/alerts/rules", json={"name": "x", "metric": "latency", "condition": {"op": "=", "threshold": 1}})
        assert r.status_code == 400 and "condition.op" in r.json()["error"]["message"]
        r = c.post("/api/alerts/rules", content=b"{nope", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
        r = c.post("/api/alerts/rules", json={**_tier_rule("apex-legal", 2000, []), "filters": ["tenant = apex"]})
        assert r.status_code == 400 and "FIELD = VALUE" in r.json()["error"]["message"]
        assert c.get("/api/alerts/rules/rul_nope").status_code == 404
    apex = create_rule(server.base_url, server.api_key, {**_tier_rule("apex-legal", 2000, []), "enabled": False})
    other = create_rule(server.base_url, server.api_key, {**_tier_rule("stratex-consulting", 3000, []), "enabled": False})
    try:
        apex_key = server.create_key("read", tenant_id="apex-legal")
        with AlertsClient(server.base_url, apex_key) as tenant_client:
            assert [r["id"] for r in tenant_client.list_rules()] == [apex["id"]]
            with pytest.raises(AlertsError, match="404"):
                tenant_client.get_rule(str(other["id"]))
            with pytest.raises(AlertsError, match="403"):
                tenant_client.delete_rule(str(apex["id"]))
        with AlertsClient(server.base_url, server.api_key) as client:
            changed = client.update_rule(str(apex["id"]), {"condition": {"op": ">", "threshold": 2500}, "name": "apex tier"})
            assert changed["condition"]["threshold"] == 2500 and changed["name"] == "apex tier"
            assert changed["filters"] == [{"field": "tenant_id", "op": "=", "value": "apex-legal"}]
            with pytest.raises(AlertsError, match="400: invalid alert rule: window_seconds"):
                client.update_rule(str(apex["id"]), {"window_seconds": 0})
    finally:
        with AlertsClient(server.base_url, server.api_key) as client:
            client.delete_rule(str(apex["id"]))
            client.delete_rule(str(other["id"]))
    with httpx.Client(base_url=server.base_url) as anon:
        assert anon.get("/api/alerts/rules").status_code == 401


def test_cli_create_list_update_history_delete(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--endpoint", server.otlp_endpoint, "--api-key", server.api_key]
    assert alerts_cli(["create", "--name", "cli rule", "--scope", "span", "--metric", "cost", "--aggregation", "sum",
                       "--filter", "tenant_id = techstart-inc", "--condition", "> 5", "--window", "1h", "--every", "30s",
                       "--disable", *base]) == 0
    out = capsys.readouterr().out
    rule_id = out.split()[0]
    assert "cli rule: sum cost of spans where tenant_id = techstart-inc over 1h > $5  [ok]" in out
    assert alerts_cli(["update", rule_id, "--condition", "< 1", *base]) == 0
    assert "< $1" in capsys.readouterr().out
    assert alerts_cli(["list", *base]) == 0
    assert f"{rule_id}  ok      cli rule (disabled)" in capsys.readouterr().out
    assert alerts_cli(["history", "--rule", rule_id, *base]) == 0
    assert "no alert events" in capsys.readouterr().out
    assert alerts_cli(["update", rule_id, "--window", "1s", *base]) == 1
    assert "window_seconds" in capsys.readouterr().err
    assert alerts_cli(["delete", rule_id, *base]) == 0
    assert alerts_cli(["get", rule_id, *base]) == 1
    assert "404" in capsys.readouterr().err
