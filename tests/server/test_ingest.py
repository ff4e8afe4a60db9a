"""The OTLP receiver with the real OpenTelemetry exporter: protobuf, gzip, JSON, attribute mapping,
pricing at ingest, duplicate delivery."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import httpx
from netra_server.testing import RunningServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv
from netra.pricing import price_tokens

from ._helpers import SEC, T0, record, send


def _spans_of(srv: RunningServer, trace_id: str) -> dict[str, object]:
    assert srv.store is not None
    spans, _ = srv.store.trace_spans(srv.project_id, trace_id)
    return {s.name: s for s in spans}


def test_protobuf_and_gzip_with_the_real_exporter(netra_server: RunningServer) -> None:
    provider, collect = record("checkout")
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", attributes={semconv.TENANT_ID: "acme"}) as root:
        with tracer.start_as_current_span("child", attributes={semconv.TENANT_ID: "acme", "x": [1, 2]}):
            pass
    first, second = collect.spans[0], collect.spans[1]
    assert send(netra_server, [first]) is SpanExportResult.SUCCESS
    assert send(netra_server, [second], gzip=True) is SpanExportResult.SUCCESS
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = _spans_of(netra_server, trace_id)
    assert set(spans) == {"root", "child"}
    child = spans["child"]
    assert child.parent_span_id == format(root.get_span_context().span_id, "016x")  # type: ignore[attr-defined]
    assert child.tenant_id == "acme" and child.service == "checkout" and child.environment == "test"  # type: ignore[attr-defined]
    assert json.loads(child.attributes)["x"] == [1, 2]  # type: ignore[attr-defined]


def test_netra_sdk_endpoint_convention_telemetry_prefix(netra_server: RunningServer) -> None:
    provider, collect = record()
    with provider.get_tracer("t").start_as_current_span("via-telemetry") as span:
        pass
    assert send(netra_server, collect.spans, path="/telemetry/v1/traces") is SpanExportResult.SUCCESS
    assert "via-telemetry" in _spans_of(netra_server, format(span.get_span_context().trace_id, "032x"))


def test_attribute_mapping_with_fallbacks(netra_server: RunningServer) -> None:
    provider, collect = record()
    tracer = provider.get_tracer("t")
    usage = json.dumps([
        {"model": "my-model", "usage_type": "input_tokens", "units_used": 70, "cost_in_usd": 0.25},
        {"model": "my-model", "usage_type": "output_tokens", "units_used": 30, "cost_in_usd": 0.5},
    ])
    with tracer.start_as_current_span("other-producer", attributes={
        "tenant.id": "t-fallback", "session.id": "sess-fb", "enduser.id": "u-fb", semconv.SPAN_TYPE: "GENERATION",
        semconv.LEGACY_PROMPT_TOKENS: 11, semconv.LEGACY_COMPLETION_TOKENS: 7, semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06", semconv.COST: 0.125,
    }) as span:
        with tracer.start_as_current_span("openinference", attributes={
            semconv.OPENINFERENCE_PROMPT_TOKENS: 5, semconv.OPENINFERENCE_COMPLETION_TOKENS: 3,
            semconv.USER_ID: "u-netra", "user.id": "ignored", semconv.COST: "0.5",
        }):
            pass
        with tracer.start_as_current_span("explicit", attributes={semconv.USAGE: usage, semconv.USAGE_COVERED: True}):
            pass
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    spans = _spans_of(netra_server, format(span.get_span_context().trace_id, "032x"))
    s = spans["other-producer"]
    assert (s.tenant_id, s.session_id, s.user_id, s.span_type) == ("t-fallback", "sess-fb", "u-fb", "generation")  # type: ignore[attr-defined]
    assert (s.input_tokens, s.output_tokens, s.model, s.cost) == (11, 7, "gpt-4o-2024-08-06", Decimal("0.125"))  # type: ignore[attr-defined]
    oi = spans["openinference"]
    assert (oi.input_tokens, oi.output_tokens, oi.user_id, oi.cost) == (5, 3, "u-netra", Decimal("0.5"))  # type: ignore[attr-defined]
    ex = spans["explicit"]
    assert ex.has_usage and ex.covered and not ex.counted  # type: ignore[attr-defined]
    assert (ex.model, ex.cost, ex.input_tokens, ex.output_tokens) == ("my-model", Decimal("0.75"), 70, 30)  # type: ignore[attr-defined]


def test_explicit_usage_tokens_of_netra_usage_items(netra_server: RunningServer) -> None:
    """input_tokens / output_tokens / cached_tokens of the items are read and summed; an item without
    them falls back to its usage_type (input/prompt, output/completion; a token kind like "chat": tokens
    of an unknown split, counted as input); units of another kind ("audio_minutes") are not tokens."""
    provider, collect = record()
    tracer = provider.get_tracer("t")

    def items(*entries: dict[str, object]) -> str:
        return json.dumps([{"model": "my-model", "cost_in_usd": 0.25, **e} for e in entries])

    cases = {
        "explicit": items({"usage_type": "chat", "units_used": 1580, "input_tokens": 1200, "output_tokens": 380,
                           "cached_tokens": 200},
                          {"usage_type": "chat", "units_used": 15, "input_tokens": 10, "output_tokens": 5}),
        "mixed": items({"usage_type": "chat", "units_used": 999, "output_tokens": 7},
                       {"usage_type": "prompt_tokens", "units_used": 30}),
        "generic": items({"usage_type": "chat", "units_used": 1580}, {"usage_type": "audio_minutes", "units_used": 42}),
        "measured-wins": items({"usage_type": "chat", "units_used": 1, "input_tokens": 1, "output_tokens": 1}),
    }
    with tracer.start_as_current_span("root") as root:
        for name, usage in cases.items():
            extra = {semconv.GEN_AI_USAGE_INPUT_TOKENS: 50, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5} if name == "measured-wins" else {}
            with tracer.start_as_current_span(name, attributes={semconv.USAGE: usage, **extra}):
                pass
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    spans = _spans_of(netra_server, format(root.get_span_context().trace_id, "032x"))

    def tokens(name: str) -> tuple[int, int, int]:
        s = spans[name]
        return s.input_tokens, s.output_tokens, s.cached_tokens  # type: ignore[attr-defined]

    assert tokens("explicit") == (1210, 385, 200)
    assert tokens("mixed") == (30, 7, 0)
    assert tokens("generic") == (1580, 0, 0)
    assert tokens("measured-wins") == (50, 5, 0)
    for name in cases:
        s = spans[name]
        assert s.has_usage and s.counted and s.cost == Decimal("0.25") * (2 if name != "measured-wins" else 1)  # type: ignore[attr-defined]


def test_priced_at_ingest_with_the_sdk_price_table_and_unknown_flagged(netra_server: RunningServer) -> None:
    provider, collect = record()
    tracer = provider.get_tracer("t")
    start = T0 + 5 * SEC
    span = tracer.start_span("chat gpt-4o-mini", start_time=start, attributes={
        semconv.GEN_AI_PROVIDER_NAME: "openai", semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
    })
    span.end(end_time=start + SEC)
    unknown = tracer.start_span("chat secret-model", start_time=start, attributes={
        semconv.GEN_AI_RESPONSE_MODEL: "secret-model-xyz", semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
    })
    unknown.end(end_time=start + SEC)
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    priced = _spans_of(netra_server, format(span.get_span_context().trace_id, "032x"))["chat gpt-4o-mini"]
    from datetime import UTC, datetime

    expected = price_tokens("gpt-4o-mini", provider="openai", input_tokens=1200, output_tokens=300,
                            cached_input_tokens=200, at=datetime.fromtimestamp(start / 1e9, tz=UTC))
    assert expected.cost is not None and expected.cost > 0
    assert priced.cost == expected.cost and priced.cost_source == expected.source  # type: ignore[attr-defined]
    assert priced.cached_tokens == 200 and not priced.cost_unknown  # type: ignore[attr-defined]
    u = _spans_of(netra_server, format(unknown.get_span_context().trace_id, "032x"))["chat secret-model"]
    assert u.cost is None and u.cost_unknown and u.counted  # type: ignore[attr-defined]


def test_duplicate_delivery_is_stored_and_counted_once(netra_server: RunningServer) -> None:
    provider, collect = record()
    tracer = provider.get_tracer("t")
    for i in range(3):
        s = tracer.start_span(f"dup-{i}", start_time=T0 + i * SEC, attributes={
            semconv.TENANT_ID: "dup-tenant", semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", semconv.COST: 0.5,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
        })
        s.end(end_time=T0 + i * SEC + 1000)
    spans = collect.spans
    assert send(netra_server, spans) is SpanExportResult.SUCCESS
    assert send(netra_server, spans) is SpanExportResult.SUCCESS          # an exporter retry
    assert send(netra_server, spans[:1] * 3, gzip=True) is SpanExportResult.SUCCESS  # within one request
    with netra_server.client() as c:
        data = c.get("/usage/tenants/dup-tenant").json()["data"]
    assert (data["requestsCount"], data["tokenCount"], data["totalCost"]) == (3, 33, 1.5)
    assert netra_server.store is not None
    rows = netra_server.store.query(
        "SELECT count() AS n FROM netra_spans FINAL WHERE project_id = {p:String} AND tenant_id = 'dup-tenant'",
        {"p": netra_server.project_id},
    )
    assert rows[0]["n"] == 3


def _json_request(trace_id: str, span_id: str, name: str) -> dict[str, object]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 2_500_000),
            "attributes": [
                {"key": semconv.TENANT_ID, "value": {"stringValue": "json-tenant"}},
                {"key": semconv.GEN_AI_USAGE_INPUT_TOKENS, "value": {"intValue": "42"}},
                {"key": semconv.COST, "value": {"doubleValue": 0.01}},
            ],
            "status": {"code": 2, "message": "boom"},
        }]}],
    }]}


def test_otlp_json_and_gzip_json(netra_server: RunningServer) -> None:
    tid, sid = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    body = json.dumps(_json_request(tid, sid, "json-span")).encode()
    r = httpx.post(netra_server.otlp_endpoint, content=body,
                   headers={**netra_server.headers, "content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {}
    r = httpx.post(netra_server.otlp_endpoint, content=gzip.compress(json.dumps(_json_request(tid, "b7ad6b7169203332", "gz")).encode()),
                   headers={**netra_server.headers, "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200
    spans = _spans_of(netra_server, tid)
    s = spans["json-span"]
    assert (s.kind, s.status_code, s.status_message, s.input_tokens, s.duration_ns) == ("CLIENT", "ERROR", "boom", 42, 2_500_000)  # type: ignore[attr-defined]
    assert s.service == "json-svc" and s.tenant_id == "json-tenant" and "gz" in spans  # type: ignore[attr-defined]


def test_invalid_ids_are_rejected_as_partial_success(netra_server: RunningServer) -> None:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    good = spans.add(trace_id=bytes.fromhex("11" * 16), span_id=bytes.fromhex("22" * 8), name="good",
                     start_time_unix_nano=T0, end_time_unix_nano=T0 + 1)
    spans.add(trace_id=b"\0" * 16, span_id=bytes.fromhex("33" * 8), name="zero-trace")
    spans.add(trace_id=bytes.fromhex("11" * 16), span_id=b"\1\2", name="short-span-id")
    spans.add(trace_id=bytes.fromhex("11" * 16), span_id=bytes.fromhex("44" * 8), name="no-start-time")
    r = httpx.post(netra_server.otlp_endpoint, content=req.SerializeToString(),
                   headers={**netra_server.headers, "content-type": "application/x-protobuf"})
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 3
    assert "start time" in resp.partial_success.error_message
    assert set(_spans_of(netra_server, good.trace_id.hex())) == {"good"}


def test_bad_bodies_are_400_or_415_with_a_message(netra_server: RunningServer) -> None:
    url, h = netra_server.otlp_endpoint, netra_server.headers
    r = httpx.post(url, content=b"\xff\xffnot protobuf", headers={**h, "content-type": "application/x-protobuf"})
    assert r.status_code == 400
    from google.rpc import status_pb2

    assert "protobuf" in status_pb2.Status.FromString(r.content).message
    r = httpx.post(url, content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.post(url, content=b"[]", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400
    bad_id = _json_request("not a trace id!", "b7ad6b7169203331", "x")
    r = httpx.post(url, json=bad_id, headers=h)
    assert r.status_code == 400 and "traceId" in r.json()["error"]["message"]
    r = httpx.post(url, content=b"x", headers={**h, "content-type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(url, content=b"x", headers={**h, "content-type": "application/json", "content-encoding": "br"})
    assert r.status_code == 415
    r = httpx.post(url, content=b"not gzip", headers={**h, "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]["message"]


def test_receiver_needs_an_ingest_key(netra_server: RunningServer) -> None:
    provider, collect = record()
    with provider.get_tracer("t").start_as_current_span("nope"):
        pass
    r = httpx.post(netra_server.otlp_endpoint, content=b"", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 401
    assert send(netra_server, collect.spans, key="nk_000000000000_wrongwrongwrongwrongwrong") is SpanExportResult.FAILURE
    read_key = netra_server.create_key("read")
    r = httpx.post(netra_server.otlp_endpoint, content=b"", headers={"x-api-key": read_key, "content-type": "application/json"})
    assert r.status_code == 403 and "cannot send spans" in r.json()["error"]["message"]
    ingest_key = netra_server.create_key("ingest")
    assert send(netra_server, collect.spans, key=ingest_key) is SpanExportResult.SUCCESS
    r = httpx.get(netra_server.base_url + "/usage/tenants/x", headers={"Authorization": f"Bearer {ingest_key}"})
    assert r.status_code == 403


def test_a_started_server_keeps_the_garbage_collector_cheap(netra_server: RunningServer) -> None:
    """Once started, the server's process collects young objects every 50,000 (not 700: each request
    brings hundreds of span keys) and leaves what start-up made out of every collection."""
    import gc

    from netra_server.lifecycle import GC_THRESHOLDS

    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 10_000  # the app, the modules, the store
