"""The Netra-compatible usage routes and our summaries, over data sent with the real exporter:
the billing rule (covered spans, duplicates), windows, time formats, error answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from netra import semconv
from netra.pricing import price_tokens

from ._helpers import SEC, T0, record, send

HOUR = 3600 * SEC
PRICED_AT_INGEST = price_tokens("gpt-4o-mini", provider="openai", input_tokens=500, output_tokens=100,
                                at=datetime.fromtimestamp((T0 + 20 * SEC) / 1e9, tz=UTC)).cost
assert PRICED_AT_INGEST is not None


#: The spans the fixture sent (once, then the first three again).
SENT: list[ReadableSpan] = []


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // SEC, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % SEC:09d}Z"


@pytest.fixture(scope="module")
def data(netra_server: RunningServer) -> Iterator[RunningServer]:
    provider, collect = record()
    tr = provider.get_tracer("t")

    def span(name: str, start: int, dur_ms: int, parent: Any = None, error: bool = False, **attrs: Any) -> None:
        ctx = set_span_in_context(parent) if parent is not None else None
        s = tr.start_span(name, context=ctx, start_time=start, attributes=attrs)
        if error:
            s.set_status(Status(StatusCode.ERROR, "failed"))
        s.end(end_time=start + dur_ms * 1_000_000)
        return s  # type: ignore[return-value]

    apex = {semconv.TENANT_ID: "apex", semconv.USER_ID: "alice"}
    # trace 1 (apex, s-a1): set_usage around an auto-traced call: the parent is covered, the call counts
    root = tr.start_span("meeting-summarization", start_time=T0 + 10 * SEC, attributes={
        **apex, semconv.SESSION_ID: "s-a1", semconv.USAGE_COVERED: True,
        semconv.USAGE: json.dumps([{"model": "gpt-4o-mini", "usage_type": "tokens", "units_used": 1200, "cost_in_usd": 0.00027}]),
    })
    span("chat gpt-4o-mini", T0 + 10 * SEC + 1000, 800, parent=root, **apex, **{
        semconv.SESSION_ID: "s-a1", semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 200, semconv.COST: 0.00027, semconv.COST_SOURCE: "price_table:x"})
    root.end(end_time=T0 + 11 * SEC)
    # trace 2 (apex, s-a2): tokens without cost, priced at ingest
    span("chat", T0 + 20 * SEC, 300, **apex, **{semconv.SESSION_ID: "s-a2", semconv.GEN_AI_PROVIDER_NAME: "openai",
         semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", semconv.GEN_AI_USAGE_INPUT_TOKENS: 500,
         semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 100})
    # trace 3 (apex, s-a3, user bob), one hour later: an unknown model (unpriced) that failed
    span("chat mystery", T0 + HOUR + 5 * SEC, 2000, error=True, **{semconv.TENANT_ID: "apex", semconv.USER_ID: "bob",
         semconv.SESSION_ID: "s-a3", semconv.GEN_AI_RESPONSE_MODEL: "mystery-model-1", semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
         semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5})
    # trace 4 (stratex): a counted call and a plain span without usage
    st = {semconv.TENANT_ID: "stratex", semconv.USER_ID: "sam", semconv.SESSION_ID: "s-s1"}
    r4 = tr.start_span("handle", start_time=T0 + 30 * SEC, attributes=st)
    span("chat gpt-4o", T0 + 30 * SEC + 10, 1500, parent=r4, **st, **{semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o",
         semconv.GEN_AI_USAGE_INPUT_TOKENS: 2000, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300, semconv.COST: 0.01})
    r4.end(end_time=T0 + 32 * SEC)
    spans = collect.spans
    SENT[:] = spans
    assert send(netra_server, spans) is SpanExportResult.SUCCESS
    assert send(netra_server, spans[:3], gzip=True) is SpanExportResult.SUCCESS  # a retried delivery
    provider.shutdown()
    yield netra_server


def get(srv: RunningServer, path: str, **params: Any) -> Any:
    with srv.client() as c:
        r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_tenant_usage_in_a_window_follows_the_billing_rule(data: RunningServer) -> None:
    d = get(data, "/usage/tenants/apex", startTime=iso(T0), endTime=iso(T0 + HOUR))
    assert d == {"tenant_id": "apex", "organisation_id": data.organisation_id, "tokenCount": 1800,
                 "requestsCount": 2, "sessionsCount": 2, "totalCost": float(Decimal("0.00027") + PRICED_AT_INGEST)}


def test_tenant_usage_over_all_time_sums_known_costs_only(data: RunningServer) -> None:
    d = get(data, "/usage/tenants/apex")
    assert (d["requestsCount"], d["tokenCount"], d["sessionsCount"]) == (3, 1815, 3)
    assert d["totalCost"] == float(Decimal("0.00027") + PRICED_AT_INGEST)  # the unknown model adds nothing
    s = get(data, "/usage/tenants/stratex")
    assert (s["requestsCount"], s["tokenCount"], s["sessionsCount"], s["totalCost"]) == (1, 2300, 1, 0.01)


def test_session_usage(data: RunningServer) -> None:
    assert get(data, "/usage/sessions/s-a1") == {"session_id": "s-a1", "tokenCount": 1200, "requestsCount": 1,
                                                 "totalCost": 0.00027}
    assert get(data, "/usage/sessions/s-a2", startTime=iso(T0 + 20 * SEC), endTime=iso(T0 + 20 * SEC))["requestsCount"] == 1
    assert get(data, "/usage/sessions/s-a2", startTime=iso(T0 + 20 * SEC + 1))["requestsCount"] == 0


def test_no_data_is_200_with_zeros(data: RunningServer) -> None:
    assert get(data, "/usage/tenants/nobody") == {"tenant_id": "nobody", "organisation_id": data.organisation_id,
                                                  "tokenCount": 0, "requestsCount": 0, "sessionsCount": 0, "totalCost": 0.0}
    assert get(data, "/usage/sessions/none", startTime="2030-01-01")["totalCost"] == 0.0


@pytest.mark.parametrize(("start", "end", "requests"), [
    ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", 2),
    ("2026-01-01T00:00:00", "2026-01-01T01:00:00", 2),                     # no offset: UTC
    ("2026-01-01T01:00:00+01:00", "2026-01-01T02:00:00+0100", 2),          # offsets
    ("2026-01-01T00:00:20.000000000Z", "2026-01-01T00:00:20Z", 1),         # inclusive at both ends, ns
    ("2026-01-01T00:00:20.000000001Z", "2026-01-01T00:59:59.999999Z", 0),
    ("2026-01-01T00:00:10,5Z", "2026-01-01 00:00:20.5", 1),                # comma fraction, space separator
    ("2026-01-01", "2026-01-02", 3),                                       # dates
])
def test_time_formats(data: RunningServer, start: str, end: str, requests: int) -> None:
    assert get(data, "/usage/tenants/apex", startTime=start, endTime=end)["requestsCount"] == requests


@pytest.mark.parametrize(("params", "fragment"), [
    ({"startTime": "yesterday"}, "not an ISO 8601 time"),
    ({"startTime": "2026-13-01T00:00:00Z"}, "not a valid time"),
    ({"endTime": "2026-01-01T25:00:00Z"}, "not a valid time"),
    ({"startTime": "2026-01-01T00:00:00+25:00"}, "not a valid time"),
    ({"startTime": "2026-01-02", "endTime": "2026-01-01"}, "before startTime"),
    ({"startTime": "1969-12-31T00:00:00Z"}, "1970"),
    ({"startTime": "9999-01-01"}, "out of range"),
])
def test_bad_times_are_400_with_a_message(data: RunningServer, params: dict[str, str], fragment: str) -> None:
    with data.client() as c:
        for path in ("/usage/tenants/apex", "/usage/sessions/s-a1", "/api/usage/summary", "/api/latency"):
            r = c.get(path, params=params)
            assert r.status_code == 400, (path, r.text)
            assert fragment in r.json()["error"]["message"]


def test_usage_summary_by_tenant_model_user_day(data: RunningServer) -> None:
    by_tenant = get(data, "/api/usage/summary", groupBy="tenant")
    groups = {g["key"]: g for g in by_tenant["groups"]}
    assert set(groups) == {"apex", "stratex"}
    assert (groups["apex"]["requestsCount"], groups["apex"]["unpricedCount"], groups["apex"]["sessionsCount"]) == (3, 1, 3)
    assert by_tenant["total"]["requestsCount"] == 4 and by_tenant["total"]["unpricedCount"] == 1
    assert by_tenant["total"]["spanCount"] == 6  # 6 distinct spans; the retried 3 once
    by_model = {g["key"]: g for g in get(data, "/api/usage/summary", groupBy="model")["groups"]}
    assert set(by_model) == {"gpt-4o-mini", "gpt-4o", "mystery-model-1"}
    assert by_model["gpt-4o-mini"]["requestsCount"] == 2 and by_model["gpt-4o-mini"]["tokenCount"] == 1800
    assert by_model["mystery-model-1"]["totalCost"] == 0.0 and by_model["mystery-model-1"]["unpricedCount"] == 1
    by_user = {g["key"]: g["requestsCount"] for g in get(data, "/api/usage/summary", groupBy="user")["groups"]}
    assert by_user == {"alice": 2, "bob": 1, "sam": 1}
    by_day = get(data, "/api/usage/summary", groupBy="day", tenantId="apex", startTime=iso(T0), endTime=iso(T0 + HOUR))
    assert [(g["key"], g["requestsCount"]) for g in by_day["groups"]] == [("2026-01-01", 2)]
    with data.client() as c:
        r = c.get("/api/usage/summary", params={"groupBy": "planet"})
        assert r.status_code == 400 and "groupBy" in r.json()["error"]["message"]


def test_latency_percentiles_and_error_rate_per_tenant(data: RunningServer) -> None:
    rows = {r["tenant_id"]: r for r in get(data, "/api/latency")}
    # root spans: apex 1000 ms, 300 ms, 2000 ms (failed); stratex 2000 ms
    assert rows["apex"]["spanCount"] == 3 and rows["apex"]["errorCount"] == 1
    assert rows["apex"]["errorRate"] == pytest.approx(1 / 3)
    assert rows["apex"]["p50Ms"] == pytest.approx(1000.0)
    assert rows["stratex"]["p99Ms"] == pytest.approx(2000.0) and rows["stratex"]["errorRate"] == 0
    llm = {r["tenant_id"]: r for r in get(data, "/api/latency", scope="llm", startTime=iso(T0), endTime=iso(T0 + HOUR))}
    assert llm["apex"]["spanCount"] == 2 and llm["apex"]["p50Ms"] in (pytest.approx(800.0), pytest.approx(300.0))
    assert llm["stratex"]["p50Ms"] == pytest.approx(1500.0)


def test_trace_usage_rollup(data: RunningServer) -> None:
    with data.client() as c:
        traces = c.post("/sdk/traces", json={"filters": [{"field": "session_id", "operator": "equals", "type": "string",
                                                           "value": "s-a1"}]}).json()["data"]["data"]
        assert len(traces) == 1
        t = traces[0]
        assert (t["name"], t["total_tokens"], t["total_cost"], t["models"]) == ("meeting-summarization", 1200, 0.00027, ["gpt-4o-mini"])
        d = c.get(f"/api/traces/{t['id']}/usage").json()["data"]
    spans = {s["name"]: s for s in d["spans"]}
    root, call = spans["meeting-summarization"], spans["chat gpt-4o-mini"]
    assert root["covered"] and not root["counted"] and root["own"]["cost"] == 0.00027  # its own numbers, shown
    assert call["counted"] and call["rollup"]["totalCost"] == 0.00027
    assert root["rollup"] == {"requestsCount": 1, "inputTokens": 1000, "outputTokens": 200, "cachedTokens": 0,
                              "totalCost": 0.00027, "unpricedCount": 0, "totalTokens": 1200}
    assert d["total"] == root["rollup"]
    with data.client() as c:
        assert c.get("/api/traces/" + "ab" * 16 + "/usage").status_code == 404
        assert c.get("/api/traces/not-a-trace/usage").status_code == 400


def test_openapi_documents_the_routes(data: RunningServer) -> None:
    spec = httpx.get(data.base_url + "/openapi.json").json()
    for path in ("/v1/traces", "/usage/tenants/{tenant_id}", "/usage/sessions/{session_id}", "/sdk/traces",
                 "/sdk/traces/{trace_id}/spans", "/api/usage/summary", "/api/latency", "/api/traces/{trace_id}/usage"):
        assert path in spec["paths"], path
    assert httpx.get(data.base_url + "/docs").status_code == 200


def test_every_route_answers_the_same_from_the_daily_rollup(data: RunningServer) -> None:
    """The server's background refresher rolls up settled days; no answer changes, also when a
    duplicate delivery lands in the rolled-up day afterwards (that day is then read from the spans)."""
    from netra_server.store import Store, Window

    store = data.store
    assert isinstance(store, Store)
    day = T0 // (86_400 * SEC)

    def answers() -> list[Any]:
        with data.client() as c:
            out = [c.get("/usage/tenants/apex").json(), c.get("/usage/sessions/s-a1").json(),
                   c.get("/api/latency", params={"scope": "all"}).json(), c.get("/api/latency").json()]
            out += [c.get("/api/usage/summary", params={"groupBy": g}).json()
                    for g in ("tenant", "model", "user", "session", "day")]
            for sort in ("start_time", "latency", "cost", "tokens"):
                out.append(c.post("/sdk/traces", json={"sortField": sort, "pagination": {"limit": 2}}).json())
        return out

    before = answers()
    assert store._plan(Window.all()).days == {}
    assert store.refresh_rollups(settle_seconds=0) == ["2026-01-01"]
    assert set(store._plan(Window.all()).days) == {day}
    assert answers() == before
    # a rebatched retry (other spans in the body than any delivery before): parsed, and nothing is
    # written (every span is stored already): the day keeps its rollup
    assert send(data, [SENT[4], SENT[1], SENT[0]]) is SpanExportResult.SUCCESS
    assert set(store._plan(Window.all()).days) == {day}
    assert answers() == before
    assert store.refresh_rollups(settle_seconds=0) == []
    assert answers() == before
