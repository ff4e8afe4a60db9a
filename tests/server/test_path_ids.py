"""Ids in path parameters: a tenant or session id with '/', '?', '#', '%' or spaces, sent
percent-encoded (as the usage client does), reaches the route intact; a trace id with '/' is a 400
that says why, not a route-level 404."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context

from netra import semconv

from ._helpers import SEC, T0, record, send

TENANT = "org/team"
SESSION = "org/team/2026-01?x=1#a %b"
OTHER = "org"  # a prefix of TENANT: must not be mixed up with it


def seg(value: str) -> str:
    return quote(value, safe="")


@pytest.fixture(scope="module")
def data(netra_server: RunningServer) -> Iterator[dict[str, Any]]:
    provider, collect = record()
    tr = provider.get_tracer("t")
    trace_ids = []
    for i, (tenant, session, tokens, cost) in enumerate(
        [(TENANT, SESSION, 100, "0.25"), (TENANT, SESSION, 50, "0.5"), (OTHER, "org", 7, "1")]
    ):
        attrs = {semconv.TENANT_ID: tenant, semconv.SESSION_ID: session, semconv.USER_ID: "u/1"}
        root = tr.start_span("request", start_time=T0 + i * SEC, attributes=attrs)
        llm = tr.start_span("chat", context=set_span_in_context(root), start_time=T0 + i * SEC + 1, attributes={
            **attrs, semconv.GEN_AI_RESPONSE_MODEL: "m", semconv.GEN_AI_USAGE_INPUT_TOKENS: tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1, semconv.COST: cost})
        llm.end(end_time=T0 + i * SEC + 2)
        root.end(end_time=T0 + i * SEC + 3)
        trace_ids.append(format(root.get_span_context().trace_id, "032x"))
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    provider.shutdown()
    yield {"srv": netra_server, "traces": trace_ids}


def get(srv: RunningServer, path: str, key: str | None = None, **params: Any) -> Any:
    with srv.client(key) as c:
        r = c.get(path, params=params)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()["data"]


def test_tenant_id_with_a_slash(data: dict[str, Any]) -> None:
    srv = data["srv"]
    d = get(srv, f"/usage/tenants/{seg(TENANT)}")
    assert d["tenant_id"] == TENANT
    assert (d["requestsCount"], d["tokenCount"], d["sessionsCount"], d["totalCost"]) == (2, 152, 1, 0.75)
    other = get(srv, f"/usage/tenants/{seg(OTHER)}")
    assert (other["requestsCount"], other["tokenCount"]) == (1, 8)


def test_session_id_with_reserved_characters(data: dict[str, Any]) -> None:
    d = get(data["srv"], f"/usage/sessions/{seg(SESSION)}")
    assert d == {"session_id": SESSION, "tokenCount": 152, "requestsCount": 2, "totalCost": 0.75}


def test_a_tenant_limited_key_of_a_tenant_with_a_slash(data: dict[str, Any]) -> None:
    srv = data["srv"]
    key = srv.create_key("read", tenant_id=TENANT)
    assert get(srv, f"/usage/tenants/{seg(TENANT)}", key)["requestsCount"] == 2
    with srv.client(key) as c:
        r = c.get(f"/usage/tenants/{seg(OTHER)}")
        assert r.status_code == 403 and repr(TENANT) in r.json()["error"]["message"]
    body = {"filters": [{"field": "tenant_id", "operator": "equals", "type": "string", "value": TENANT}]}
    with srv.client(key) as c:
        listed = c.post("/sdk/traces", json=body).json()["data"]["data"]
    assert sorted(t["id"] for t in listed) == sorted(data["traces"][:2])
    spans = get(srv, f"/sdk/traces/{data['traces'][0]}/spans", key)["data"]
    assert {s["tenant_id"] for s in spans} == {TENANT}


def test_summary_keys_with_a_slash(data: dict[str, Any]) -> None:
    d = get(data["srv"], "/api/usage/summary", groupBy="tenant", tenantId=TENANT)
    assert [(g["key"], g["requestsCount"]) for g in d["groups"]] == [(TENANT, 2)]


@pytest.mark.parametrize("path", ["/sdk/traces/{}/spans", "/api/traces/{}/usage"])
def test_a_trace_id_with_a_slash_is_a_400(data: dict[str, Any], path: str) -> None:
    with data["srv"].client() as c:
        r = c.get(path.format(seg("0123/abc")))
    assert r.status_code == 400
    assert "'0123/abc' must be 32 hexadecimal characters" in r.json()["error"]["message"]


def test_per_trace_routes_still_answer_for_real_ids(data: dict[str, Any]) -> None:
    srv, tid = data["srv"], data["traces"][1]
    assert len(get(srv, f"/sdk/traces/{tid}/spans")["data"]) == 2
    usage = get(srv, f"/api/traces/{tid}/usage")
    assert usage["total"]["totalCost"] == float(Decimal("0.5"))
    with srv.client() as c:  # the routes' own suffix is still required
        assert c.get(f"/sdk/traces/{tid}/spanz").status_code == 404
