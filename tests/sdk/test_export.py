"""Real OTLP/HTTP export to a local receiver, and behaviour when the backend is down or hangs."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace

from netra import Netra, UsageModel, semconv

from .otlp_receiver import hanging_url, otlp_receiver, refused_url


def test_otlp_round_trip_carries_context_on_third_party_spans() -> None:
    with otlp_receiver() as receiver:
        Netra.init(app_name="meetingmind", environment="production", endpoint=receiver.url,
                   api_key="secret-key", headers="x-team=ml%20platform", instruments=set())
        with Netra.context(tenant_id="apex-legal", session_id="sess-1", user_id="john@apex.example"):
            Netra.set_custom_attributes("tier", "enterprise")
            with Netra.start_span("meeting-summarization") as span:
                span.set_usage([UsageModel("gpt-4o-mini", "chat", 1580, 0.0004)])
                with trace.get_tracer("thirdparty.llm").start_as_current_span("chat gpt-4o-mini") as call:
                    call.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, 1200)
                    call.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, 380)
        Netra.shutdown()

        assert receiver.received, "no OTLP request arrived"
        first = receiver.received[0]
        assert first.path == "/v1/traces"
        assert first.headers["x-api-key"] == "secret-key"
        assert first.headers["x-team"] == "ml platform"
        assert first.headers["content-type"] == "application/x-protobuf"
        from .otlp_receiver import attributes

        spans = {s.name: (res, attributes(s.attributes), s) for res, s in receiver.spans()}
        assert set(spans) == {"meeting-summarization", "chat gpt-4o-mini"}
        resource, call_attrs, call_span = spans["chat gpt-4o-mini"]
        assert resource["service.name"] == "meetingmind"
        assert resource[semconv.ENVIRONMENT] == "production"
        assert call_attrs[semconv.TENANT_ID] == "apex-legal"
        assert call_attrs[semconv.SESSION_ID] == "sess-1"
        assert call_attrs[semconv.USER_ID] == "john@apex.example"
        assert call_attrs["netra.custom.tier"] == "enterprise"
        assert call_attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
        _, parent_attrs, parent_span = spans["meeting-summarization"]
        assert parent_attrs[semconv.USAGE_COVERED] is True
        assert json.loads(parent_attrs[semconv.USAGE])[0]["cost_in_usd"] == 0.0004
        assert call_span.parent_span_id == parent_span.span_id
        assert call_span.trace_id == parent_span.trace_id


def _netra_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "netra" and r.levelno >= logging.WARNING]


def _exporter_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry.exporter")]


@pytest.mark.timeout(60)
def test_backend_refusing_connections(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    caplog.set_level(logging.DEBUG)
    url = refused_url()
    Netra.init(endpoint=url, export_timeout=0.5, max_queue_size=20, instruments=set())
    Netra.set_tenant_id("t")
    for i in range(300):
        with Netra.start_span(f"s{i}"):
            pass
    Netra.shutdown(timeout=3)
    warnings = _netra_warnings(caplog)
    assert sum("dropping spans" in w for w in warnings) == 1, warnings  # once, not per span or batch
    assert sum("300 spans were not delivered" in w for w in warnings) == 1, warnings
    assert not _exporter_records(caplog)  # the exporter's per-batch errors are held back
    assert f"{url}/v1/traces" in warnings[0] and "server is running" in warnings[0]  # says what to check


@pytest.mark.timeout(60)
def test_backend_that_hangs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    caplog.set_level(logging.WARNING)
    with hanging_url() as url:
        Netra.init(endpoint=url, export_timeout=0.5, max_queue_size=10, instruments=set())
        with Netra.start_span("first"):
            pass
        for i in range(200):  # produced while the export thread waits on the hanging server
            with Netra.start_span(f"s{i}"):
                pass
        stats_before = Netra.export_stats()
        Netra.shutdown(timeout=2)
    assert stats_before["exported"] == 0
    assert stats_before["dropped_queue_full"] > 0
    warnings = _netra_warnings(caplog)
    assert sum("dropping spans" in w for w in warnings) == 1, warnings
    assert sum("201 spans were not delivered" in w for w in warnings) == 1, warnings


def test_outage_and_recovery_are_each_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with otlp_receiver() as receiver:
        receiver.status = 400  # not retryable: each export fails at once
        Netra.init(endpoint=receiver.url, disable_batch=True, instruments=set())
        for i in range(5):
            with Netra.start_span(f"lost-{i}"):
                pass
        receiver.status = 200
        for i in range(3):
            with Netra.start_span(f"ok-{i}"):
                pass
        stats = Netra.export_stats()
        Netra.shutdown()
    assert stats == {"exported": 3, "dropped_queue_full": 0, "dropped_export_failed": 5,
                     "dropped_after_shutdown": 0, "dropped": 5}
    warnings = _netra_warnings(caplog)
    assert sum("dropping spans" in w for w in warnings) == 1, warnings
    assert sum("works again; 5 spans were lost" in w for w in warnings) == 1, warnings
    assert sorted(s.name for _, s in receiver.spans()) == ["ok-0", "ok-1", "ok-2"]
