"""What a span carries cannot break a batch: impossible numbers reject that span alone (OTLP partial
success), values are never silently altered, ids are bounded and every stored id can be queried,
a tenant-bound ingest key decides the tenant, and a gzip bomb is not inflated on the event loop."""

from __future__ import annotations

import gzip
import threading
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import netra_server.otlp as otlp
import netra_server.otlp_read as otlp_read
import netra_server.receiver as receiver_module
import netra_server.usage_extract as usage_extract
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netra_server.testing import RunningServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv

from ._helpers import T0, record, send

_seq = iter(range(1, 1 << 40))


def _span(req: ExportTraceServiceRequest, name: str, attrs: dict[str, Any], trace: bytes | None = None) -> str:
    """Add a span (its attributes typed as given: int -> intValue, float -> doubleValue, str -> stringValue)."""
    n = next(_seq)
    rs = req.resource_spans[0] if req.resource_spans else req.resource_spans.add()
    ss = rs.scope_spans[0] if rs.scope_spans else rs.scope_spans.add()
    sp = ss.spans.add(trace_id=trace or n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), name=name,
                      start_time_unix_nano=T0 + n, end_time_unix_nano=T0 + n + 10)
    for k, v in attrs.items():
        kv = sp.attributes.add(key=k)
        if isinstance(v, bool):
            kv.value.bool_value = v
        elif isinstance(v, int):
            kv.value.int_value = v
        elif isinstance(v, float):
            kv.value.double_value = v
        else:
            kv.value.string_value = str(v)
    return sp.span_id.hex()


def _post(srv: RunningServer, req: ExportTraceServiceRequest, key: str | None = None) -> ExportTraceServiceResponse:
    r = httpx.post(srv.otlp_endpoint, content=req.SerializeToString(), timeout=30,
                   headers={"x-api-key": key or srv.api_key, "content-type": "application/x-protobuf"})
    assert r.status_code == 200, (r.status_code, r.content[:500])
    return ExportTraceServiceResponse.FromString(r.content)


def _stored(srv: RunningServer, span_ids: list[str]) -> dict[str, dict[str, Any]]:
    assert srv.store is not None
    rows = srv.store.query(
        "SELECT span_id, tenant_id, input_tokens, output_tokens, cost, attributes FROM netra_spans FINAL "
        "WHERE project_id = {p:String} AND has(splitByChar(',', {ids:String}), span_id)",
        {"p": srv.project_id, "ids": ",".join(span_ids)},
    )
    return {r["span_id"]: r for r in rows}


BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("inf-tokens", {semconv.GEN_AI_USAGE_INPUT_TOKENS: float("inf")}, "not a finite number"),
    ("nan-tokens", {semconv.GEN_AI_USAGE_OUTPUT_TOKENS: float("nan")}, "not a finite number"),
    ("string-1e30", {semconv.GEN_AI_USAGE_INPUT_TOKENS: "1e30"}, "over the 1,000,000,000 bound"),
    ("negative", {semconv.GEN_AI_USAGE_INPUT_TOKENS: -5}, "negative"),
    ("near-2^63", {semconv.GEN_AI_USAGE_INPUT_TOKENS: 2**63 - 1}, "bound"),
    ("units-2^64", {semconv.USAGE: '[{"model": "gpt-4o", "usage_type": "input", "units_used": 18446744073709551616}]'},
     "netra.usage[0].units_used"),
    ("units-negative", {semconv.USAGE: '[{"model": "m", "usage_type": "input", "units_used": -1, "cost_in_usd": 1}]'},
     "negative"),
    ("cost-1e20", {semconv.USAGE: '[{"model": "m", "usage_type": "chat", "units_used": 1, "cost_in_usd": 1e20}]'},
     "cost_in_usd"),
    ("cost-negative", {semconv.COST: -0.5, semconv.GEN_AI_USAGE_INPUT_TOKENS: 1}, "negative"),
    ("cost-string-nan", {semconv.COST: "NaN", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1}, "finite"),
    ("items-sum-over-bound", {semconv.USAGE: '[{"usage_type": "input", "units_used": 900000000}, '
                                            '{"usage_type": "input", "units_used": 900000000}]'}, "summed"),
    ("cost-sum-over-column", {semconv.USAGE: '[{"usage_type": "chat", "cost_in_usd": 60000000}, '
                                             '{"usage_type": "chat", "cost_in_usd": 60000000}]'}, "over the"),
]


@pytest.mark.parametrize(("name", "attrs", "why"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_an_impossible_number_rejects_that_span_alone(netra_server: RunningServer, name: str, attrs: dict[str, Any],
                                                      why: str) -> None:
    """Before: 500 (OverflowError / 'Integer exceeds 64-bit range') and the exporter dropped the batch;
    or the value was clamped / capped without a word."""
    req = ExportTraceServiceRequest()
    good = [_span(req, f"good-{i}", {semconv.TENANT_ID: "vals", semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
                                     semconv.COST: "0.25"}) for i in range(3)]
    bad = _span(req, name, {semconv.TENANT_ID: "vals", **attrs})
    resp = _post(netra_server, req)
    assert resp.partial_success.rejected_spans == 1
    msg = resp.partial_success.error_message
    assert name in msg and bad in msg and why in msg, msg
    stored = _stored(netra_server, [*good, bad])
    assert set(stored) == set(good)
    assert all(Decimal(r["cost"]) == Decimal("0.25") and r["input_tokens"] == 10 for r in stored.values())


def test_otlp_json_infinity_rejects_that_span_alone(netra_server: RunningServer) -> None:
    def span(sid: str, value: Any) -> dict[str, Any]:
        return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": sid, "name": f"json-{sid}",
                "startTimeUnixNano": str(T0 + 7), "endTimeUnixNano": str(T0 + 9),
                "attributes": [{"key": semconv.GEN_AI_USAGE_INPUT_TOKENS, "value": value}]}

    body = {"resourceSpans": [{"scopeSpans": [{"spans": [
        span("eee19b7ec3c1b174", {"doubleValue": "Infinity"}),
        span("eee19b7ec3c1b175", {"intValue": "12"}),
    ]}]}]}
    r = httpx.post(netra_server.otlp_endpoint, json=body, headers=netra_server.headers)
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "eee19b7ec3c1b174" in r.json()["partialSuccess"]["errorMessage"]
    assert set(_stored(netra_server, ["eee19b7ec3c1b174", "eee19b7ec3c1b175"])) == {"eee19b7ec3c1b175"}


def test_tokens_near_2_64_cannot_wrap_a_tenants_token_count(netra_server: RunningServer) -> None:
    """Before: two spans with 2^63 tokens were accepted and priced, and the tenant's tokenCount wrapped."""
    req = ExportTraceServiceRequest()
    for i in range(2):
        _span(req, f"huge-{i}", {semconv.TENANT_ID: "wrap", semconv.GEN_AI_USAGE_INPUT_TOKENS: 2**63 - 1,
                                 semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o"})
    _span(req, "fine", {semconv.TENANT_ID: "wrap", semconv.GEN_AI_USAGE_INPUT_TOKENS: usage_extract.MAX_TOKENS,
                        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: usage_extract.MAX_TOKENS, semconv.COST: "1"})
    assert _post(netra_server, req).partial_success.rejected_spans == 2
    with netra_server.client() as c:
        d = c.get("/usage/tenants/wrap").json()["data"]
    assert (d["tokenCount"], d["requestsCount"]) == (2 * usage_extract.MAX_TOKENS, 1)


_numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e30", "-1", "Infinity", "NaN", "1e-400", "0x10", "18446744073709551616", " 7 "]),
    st.booleans(),
)
_keys = st.sampled_from([
    semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, semconv.LEGACY_PROMPT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, semconv.COST,
    semconv.TENANT_ID, semconv.SESSION_ID, semconv.SPAN_TYPE, semconv.USAGE_COVERED, semconv.GEN_AI_RESPONSE_MODEL,
])
_usage_items = st.lists(st.dictionaries(
    st.sampled_from(["model", "usage_type", "units_used", "cost_in_usd", "input_tokens", "output_tokens", "cached_tokens"]),
    st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=8), st.none()),
    max_size=5,
), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(_keys, _numbers, max_size=6), items=st.one_of(st.none(), _usage_items),
       raw_usage=st.one_of(st.none(), st.text(max_size=30)))
def test_fuzzed_span_content_never_5xx_and_good_spans_are_stored(netra_server: RunningServer, attrs: dict[str, Any],
                                                                 items: Any, raw_usage: str | None) -> None:
    import orjson

    if items is not None:
        try:
            attrs[semconv.USAGE] = orjson.dumps(items).decode()
        except TypeError:  # an integer JSON cannot hold: send it as text
            attrs[semconv.USAGE] = str(items)
    elif raw_usage is not None:
        attrs[semconv.USAGE] = raw_usage
    req = ExportTraceServiceRequest()
    good = _span(req, "good", {semconv.TENANT_ID: "fuzz", semconv.GEN_AI_USAGE_INPUT_TOKENS: 3})
    fuzzed = _span(req, "fuzzed", attrs)
    r = httpx.post(netra_server.otlp_endpoint, content=req.SerializeToString(), timeout=30,
                   headers={**netra_server.headers, "content-type": "application/x-protobuf"})
    assert r.status_code == 200, (attrs, r.status_code, r.content[:300])
    resp = ExportTraceServiceResponse.FromString(r.content)
    stored = _stored(netra_server, [good, fuzzed])
    assert good in stored
    assert (fuzzed in stored) == (resp.partial_success.rejected_spans == 0), resp.partial_success.error_message
    if fuzzed in stored:
        row = stored[fuzzed]
        assert 0 <= row["input_tokens"] <= usage_extract.MAX_TOKENS and 0 <= row["output_tokens"] <= usage_extract.MAX_TOKENS
        assert row["cost"] is None or Decimal("0") <= Decimal(row["cost"]) <= usage_extract.MAX_COST


# -- ids --------------------------------------------------------------------------------------------


def test_an_id_over_the_limit_rejects_the_span_and_names_the_limit(netra_server: RunningServer) -> None:
    """Before: a 1 MiB tenant id was stored, and no path could name it."""
    req = ExportTraceServiceRequest()
    ok = _span(req, "ok", {semconv.TENANT_ID: "t" * 256})
    long_tenant = _span(req, "long-tenant", {semconv.TENANT_ID: "t" * (1024 * 1024 - 1)})
    long_session = _span(req, "long-session", {semconv.SESSION_ID: "é" * 200})  # 400 bytes
    resp = _post(netra_server, req)
    assert resp.partial_success.rejected_spans == 2
    msg = resp.partial_success.error_message
    assert "tenant id is 1,048,575 bytes, over the 256-byte limit" in msg and "session id is 400 bytes" in msg
    assert set(_stored(netra_server, [ok, long_tenant, long_session])) == {ok}


ODD_TENANTS = ["line\nbreak", "tab\there", "nul\x00byte", "cr\rlf\r\n", "bell\x07", "del\x7f", "sp ace/sl?#%", "ü日本"]


def test_every_stored_id_is_queryable_through_the_routes_and_the_usage_client(netra_server: RunningServer) -> None:
    """Before: a tenant id with a newline was stored, and /usage/tenants/{id} answered 404."""
    from netra.usage import UsageClient

    provider, collect = record()
    tr = provider.get_tracer("t")
    for i, tenant in enumerate(ODD_TENANTS):
        tr.start_span("chat", start_time=T0 + i, attributes={
            semconv.TENANT_ID: tenant, semconv.SESSION_ID: tenant, semconv.GEN_AI_USAGE_INPUT_TOKENS: 10 + i,
            semconv.COST: "0.5"}).end(end_time=T0 + i + 5)
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    provider.shutdown()
    with netra_server.client() as c:
        for i, tenant in enumerate(ODD_TENANTS):
            r = c.get(f"/usage/tenants/{quote(tenant, safe='')}")
            assert r.status_code == 200, (tenant, r.status_code, r.text)
            assert (r.json()["data"]["tenant_id"], r.json()["data"]["tokenCount"]) == (tenant, 10 + i)
            s = c.get(f"/usage/sessions/{quote(tenant, safe='')}").json()["data"]
            assert (s["session_id"], s["tokenCount"]) == (tenant, 10 + i)
    client = UsageClient(base_url=netra_server.base_url, api_key=netra_server.api_key)
    try:
        for i, tenant in enumerate(ODD_TENANTS):
            usage = client.get_tenant_usage(tenant, start_time="2025-12-31T00:00:00Z", end_time="2026-01-02T00:00:00Z")
            assert usage is not None and usage.tenant_id == tenant and usage.token_count == 10 + i
    finally:
        client.close()


# -- tenant-bound ingest keys -------------------------------------------------------------------------


def test_a_tenant_bound_ingest_key_stamps_its_tenant_and_a_hostile_span_cannot_escape(netra_server: RunningServer) -> None:
    """Before: any ingest key could write usage onto any tenant (here $100 onto 'victim')."""
    key = netra_server.create_key("ingest", tenant_id="bound-co")
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="tenant.id", value=AnyValue(string_value="victim")))
    hostile = _span(req, "hostile", {semconv.TENANT_ID: "victim", "tenant.id": "victim", semconv.COST: "100",
                                     semconv.GEN_AI_USAGE_INPUT_TOKENS: 1})
    via_resource = _span(req, "via-resource", {semconv.COST: "1", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1})
    plain = _span(req, "plain", {semconv.TENANT_ID: "bound-co", semconv.COST: "2", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1})
    assert _post(netra_server, req, key).partial_success.rejected_spans == 0
    stored = _stored(netra_server, [hostile, via_resource, plain])
    assert {r["tenant_id"] for r in stored.values()} == {"bound-co"}
    import orjson

    attrs = orjson.loads(stored[hostile]["attributes"])
    assert attrs[semconv.TENANT_ID] == "bound-co" and attrs["tenant.id"] == "bound-co"
    assert attrs[otlp.CLAIMED_TENANT] == "victim"
    assert otlp.CLAIMED_TENANT not in orjson.loads(stored[plain]["attributes"])
    with netra_server.client() as c:
        assert c.get("/usage/tenants/victim").json()["data"]["requestsCount"] == 0
        assert Decimal(str(c.get("/usage/tenants/bound-co").json()["data"]["totalCost"])) == Decimal("103")
        keys = c.get("/api/keys").json()["data"]
    assert any(k["role"] == "ingest" and k["tenant_id"] == "bound-co" for k in keys)
    # an unbound ingest key still sends spans of any tenant; an admin key cannot be bound
    free = netra_server.create_key("ingest")
    req = ExportTraceServiceRequest()
    other = _span(req, "other", {semconv.TENANT_ID: "someone"})
    _post(netra_server, req, free)
    assert _stored(netra_server, [other])[other]["tenant_id"] == "someone"
    with netra_server.client() as c:
        r = c.post("/api/keys", json={"role": "admin", "tenantId": "x"})
    assert r.status_code == 400


def test_cli_creates_a_tenant_bound_ingest_key(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys

    def netra(*args: str) -> str:  # its own process: one chDB data folder per process
        return subprocess.run([sys.executable, "-m", "netra_server", "keys", *args, "--data-dir", str(tmp_path)],
                              check=True, capture_output=True, text=True).stdout

    out = netra("create", "--role", "ingest", "--tenant", "acme")
    assert "Created ingest key" in out and "bound to tenant 'acme'" in out
    rows = json.loads(netra("list", "--json"))
    assert [(r["role"], r["tenant_id"]) for r in rows if r["role"] == "ingest"] == [("ingest", "acme")]


# -- compressed bodies ---------------------------------------------------------------------------------


def test_a_gzip_bomb_is_inflated_off_the_event_loop(netra_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a 63 KB gzip body that expands to 58 MB was decoded inline, blocking every request.
    Where the inflating runs is recorded (no timing): the loop only ever inflates a bounded prefix."""
    loop_thread = "netra-test-server"  # the thread running the server's event loop (netra_server.testing)
    calls: list[tuple[str, int]] = []
    real = otlp_read._gunzip

    def recording(body: bytes, limit: int, encoding: str) -> bytes:
        calls.append((threading.current_thread().name, len(body)))
        return real(body, limit, encoding)

    monkeypatch.setattr(otlp_read, "_gunzip", recording)
    req = ExportTraceServiceRequest()
    _span(req, "bomb", {"pad": "a" * (40 * 1024 * 1024)})
    bomb = gzip.compress(req.SerializeToString(), 9)
    assert len(bomb) < 65536
    small_req = ExportTraceServiceRequest()
    small = _span(small_req, "small", {semconv.TENANT_ID: "gz"})
    for body in (bomb, gzip.compress(small_req.SerializeToString())):
        r = httpx.post(netra_server.otlp_endpoint, content=body, timeout=60, headers={
            **netra_server.headers, "content-type": "application/x-protobuf", "content-encoding": "gzip"})
        assert r.status_code in (200, 400), r.content[:200]  # the bomb's attribute is over the limit
    assert calls and all(name != loop_thread for name, _ in calls), calls
    assert small in _stored(netra_server, [small])
    # the small body was decompressed once, on the loop, by the bounded probe (not by _gunzip)
    assert all(size == len(bomb) for _, size in calls)
    assert receiver_module._small_body(bomb, "gzip") is None
    assert receiver_module._small_body(gzip.compress(b"x" * 1000), "gzip") == b"x" * 1000


def test_ids_with_control_characters_round_trip_through_the_sdk_and_netra_usage(netra_server: RunningServer) -> None:
    """The whole path a user takes: Netra.set_tenant_id with an odd id, a span, Netra.usage reads it back."""
    from datetime import UTC, datetime, timedelta

    from netra import Netra
    from netra._testing import reset

    tenants = ["sdk\nline", "sdk\ttab/slash", "sdk%25?#"]
    reset()
    Netra.init(app_name="odd-ids", endpoint=netra_server.base_url, api_key=netra_server.api_key)
    try:
        start = datetime.now(UTC) - timedelta(seconds=5)
        for i, tenant in enumerate(tenants):
            Netra.set_tenant_id(tenant)
            with Netra.start_span("call", attributes={semconv.GEN_AI_USAGE_INPUT_TOKENS: 100 + i,
                                                      semconv.COST: 0.5}):
                pass
        Netra.set_tenant_id(None)
        assert Netra.flush()
        end = datetime.now(UTC) + timedelta(seconds=5)
        for i, tenant in enumerate(tenants):
            usage = Netra.usage.get_tenant_usage(tenant, start, end)
            assert usage is not None and usage.tenant_id == tenant
            assert (usage.token_count, usage.request_count) == (100 + i, 1)
    finally:
        reset()


@settings(max_examples=3000, deadline=None)
@given(cost=st.one_of(st.floats(min_value=0.0, max_value=2e8), st.floats(min_value=1e-6, max_value=1e-2),
                      st.floats(allow_nan=True, allow_infinity=True),
                      st.decimals(min_value=0, max_value=100_000_000, places=10).map(float)))
def test_a_float_cost_is_written_as_the_decimal_path_writes_it(cost: float) -> None:
    """The fast text of a float cost (no Decimal) is the Decimal path's text, digit for digit; a cost
    it does not cover (an exponent, over 10 decimals, zero, out of range, NaN) is left to that path."""
    fast = usage_extract._float_cost_text(cost)
    try:
        slow: str | None = usage_extract._cost_str(usage_extract._decimal(cost))  # type: ignore[arg-type]
    except usage_extract.SpanRejected:
        slow = None
    assert fast is None or fast == slow, (cost, fast, slow)
    if 1e-4 <= cost < 1e8 and len(repr(cost).split(".")[1]) <= 10:
        assert fast is not None  # the usual costs take the fast path (else it would save nothing)
    attrs = {semconv.COST: cost, semconv.GEN_AI_USAGE_INPUT_TOKENS: 1}
    try:
        u = usage_extract.extract_usage(attrs, T0)
    except usage_extract.SpanRejected:
        assert slow is None
    else:
        assert u.cost == slow and u.cost_unknown == 0
