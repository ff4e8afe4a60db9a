"""POST /sdk/traces and GET /sdk/traces/{id}/spans: every filter, every sort, pagination to the end in
both directions without repeats or gaps (ties included), tamper-proof cursors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import set_span_in_context

from netra import semconv

from ._helpers import SEC, T0, record, send

N_TRACES = 23


@pytest.fixture(scope="module")
def data(netra_server: RunningServer) -> Iterator[dict[str, Any]]:
    """23 traces: tenants t0..t2, sessions, users; start times and latencies with ties; costs with ties."""
    provider, collect = record()
    tr = provider.get_tracer("t")
    expected: dict[str, dict[str, Any]] = {}
    for i in range(N_TRACES):
        start = T0 + (i // 3) * SEC  # groups of three traces share a start time
        latency_ms = 100 * (i % 4)   # and latencies repeat
        attrs = {semconv.TENANT_ID: f"t{i % 3}", semconv.SESSION_ID: f"sess-{i % 5}", semconv.USER_ID: f"user-{i % 2}"}
        root = tr.start_span(f"trace-{i}", start_time=start, attributes=attrs)
        child = tr.start_span("llm", context=set_span_in_context(root), start_time=start + 1, attributes={
            **attrs, semconv.GEN_AI_RESPONSE_MODEL: "m", semconv.GEN_AI_USAGE_INPUT_TOKENS: 10 * (i % 6),
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1, semconv.COST: str(0.001 * (i % 5))})
        child.end(end_time=start + 2)
        root.end(end_time=start + latency_ms * 1_000_000 + 5)
        expected[format(root.get_span_context().trace_id, "032x")] = {"i": i, **attrs}
    # one trace with many spans for the spans route (with equal start times)
    big = tr.start_span("big", start_time=T0, attributes={semconv.TENANT_ID: "t0"})
    for j in range(37):
        s = tr.start_span(f"step-{j % 4}", context=set_span_in_context(big), start_time=T0 + (j // 2),
                          attributes={semconv.TENANT_ID: "t0"})
        s.end(end_time=T0 + 1000)
    big.end(end_time=T0 + 10_000)
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    provider.shutdown()
    yield {"srv": netra_server, "traces": expected, "big": format(big.get_span_context().trace_id, "032x")}


def post(srv: RunningServer, body: dict[str, Any], key: str | None = None) -> Any:
    with srv.client(key) as c:
        r = c.post("/sdk/traces", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def page_all(srv: RunningServer, body: dict[str, Any], limit: int, direction: str = "down",
             cursor: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(200):
        page = post(srv, {**body, "pagination": {"limit": limit, "direction": direction, "cursor": cursor}})
        items.extend(page["data"])
        assert len(page["data"]) <= limit
        if not page["pageInfo"]["hasNextPage"]:
            return items
        assert len(page["data"]) == limit
        cursor = page["data"][-1]["cursor"]
    raise AssertionError("pagination did not end")


SORTS = {"start_time": lambda t: t["start_time"], "latency": lambda t: t["latency_ms"],
         "cost": lambda t: t["total_cost"], "tokens": lambda t: t["total_tokens"]}


@pytest.mark.parametrize("sort_field", list(SORTS))
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7])
def test_pagination_both_directions_to_the_end(data: dict[str, Any], sort_field: str, sort_order: str, limit: int) -> None:
    srv = data["srv"]
    body = {"sortField": sort_field, "sortOrder": sort_order, "filters": [
        {"field": "user_id", "operator": "equals", "type": "string", "value": "user-0"}]}
    everything = post(srv, {**body, "pagination": {"limit": 1000}})["data"]
    want = {t for t, e in data["traces"].items() if e[semconv.USER_ID] == "user-0"}
    assert {t["id"] for t in everything} == want
    keys = [SORTS[sort_field](t) for t in everything]
    assert keys == sorted(keys, reverse=sort_order == "desc")

    down = page_all(srv, body, limit)
    assert [t["id"] for t in down] == [t["id"] for t in everything]        # no repeats, no gaps, same order
    up = page_all(srv, body, limit, direction="up", cursor=down[-1]["cursor"])
    assert [t["id"] for t in up] == [t["id"] for t in reversed(everything[:-1])]  # back to the start
    from_end = page_all(srv, body, limit, direction="up")
    assert [t["id"] for t in from_end] == [t["id"] for t in reversed(everything)]


@pytest.mark.parametrize(("field", "value"), [("tenant_id", "t1"), ("session_id", "sess-3"), ("user_id", "user-1")])
def test_filters(data: dict[str, Any], field: str, value: str) -> None:
    attr = {"tenant_id": semconv.TENANT_ID, "session_id": semconv.SESSION_ID, "user_id": semconv.USER_ID}[field]
    items = post(data["srv"], {"filters": [{"field": field, "operator": "equals", "type": "string", "value": value}],
                               "pagination": {"limit": 100}})["data"]
    assert {t["id"] for t in items} == {t for t, e in data["traces"].items() if e[attr] == value}
    assert all(t[field] == value for t in items)


def test_trace_id_filter_window_and_summary_shape(data: dict[str, Any]) -> None:
    tid, e = next((t, e) for t, e in data["traces"].items() if e["i"] == 7)
    items = post(data["srv"], {"filters": [{"field": "trace_id", "operator": "equals", "type": "string", "value": tid.upper()}]})["data"]
    assert len(items) == 1
    t = items[0]
    assert set(t) == {"id", "name", "kind", "latency_ms", "start_time", "end_time", "cursor", "organisation_id",
                      "project_id", "session_id", "tenant_id", "user_id", "environment", "models", "prompt_tokens",
                      "completion_tokens", "cached_tokens", "total_tokens", "total_cost", "has_error", "service"}
    assert (t["name"], t["latency_ms"], t["prompt_tokens"], t["completion_tokens"], t["total_cost"]) == ("trace-7", 300, 10, 1, 0.002)
    assert t["start_time"] == "2026-01-01T00:00:02.000000000Z" and t["models"] == ["m"] and t["service"] == "test-svc"
    assert isinstance(t["latency_ms"], int) and t["project_id"] == data["srv"].project_id
    window = post(data["srv"], {"startTime": "2026-01-01T00:00:01Z", "endTime": "2026-01-01T00:00:02Z",
                                "pagination": {"limit": 100}})["data"]
    assert sorted(x["name"] for x in window) == sorted(f"trace-{i}" for i in range(3, 9))


@pytest.mark.parametrize(("body", "fragment"), [
    ({"filters": [{"field": "planet", "operator": "equals", "type": "string", "value": "x"}]}, "field"),
    ({"filters": [{"field": "tenant_id", "operator": "contains", "type": "string", "value": "x"}]}, "operator"),
    ({"filters": [{"field": "trace_id", "operator": "equals", "type": "string", "value": "xyz"}]}, "32 hexadecimal"),
    ({"pagination": {"limit": 0}}, "limit"),
    ({"pagination": {"limit": 1001}}, "at most 1000"),
    ({"pagination": {"limit": "ten"}}, "limit"),
    ({"pagination": {"direction": "sideways"}}, "direction"),
    ({"pagination": {"cursor": "garbage"}}, "cursor"),
    ({"pagination": {"cursor": "eyJhIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"}}, "cursor"),
    ({"sortField": "name"}, "sortField"),
    ({"sortOrder": "up"}, "sortOrder"),
    ({"startTime": "soon"}, "ISO 8601"),
    ({"endTime": 12}, "endTime"),
])
def test_bad_list_requests_are_400(data: dict[str, Any], body: dict[str, Any], fragment: str) -> None:
    with data["srv"].client() as c:
        r = c.post("/sdk/traces", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]


def test_tampered_cursor_or_cursor_of_another_listing_is_400(data: dict[str, Any]) -> None:
    srv = data["srv"]
    page = post(srv, {"pagination": {"limit": 2}})
    cursor = page["data"][-1]["cursor"]
    enc, sig = cursor.split(".")
    import base64
    import json

    values = json.loads(base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)))
    values[0] = str(int(values[0]) + 1)
    forged = base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode() + "." + sig
    with srv.client() as c:
        for bad in (forged, cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), cursor + "x", "a.b.c"):
            r = c.post("/sdk/traces", json={"pagination": {"limit": 2, "cursor": bad}})
            assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]
        r = c.post("/sdk/traces", json={"sortField": "cost", "pagination": {"limit": 2, "cursor": cursor}})
        assert r.status_code == 400  # a start_time cursor is not a cost cursor
        r = c.get(f"/sdk/traces/{data['big']}/spans", params={"cursor": cursor})
        assert r.status_code == 400


def spans_all(srv: RunningServer, trace_id: str, limit: int, direction: str = "down", cursor: str | None = None,
              **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with srv.client() as c:
        for _ in range(200):
            q = {"limit": limit, "direction": direction, **params}
            if cursor:
                q["cursor"] = cursor
            r = c.get(f"/sdk/traces/{trace_id}/spans", params=q)
            assert r.status_code == 200, r.text
            page = r.json()["data"]
            out.extend(page["data"])
            if not page["pageInfo"]["hasNextPage"]:
                return out
            cursor = page["data"][-1]["cursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 5, 1000])
def test_trace_spans_pagination_both_directions(data: dict[str, Any], limit: int) -> None:
    srv, tid = data["srv"], data["big"]
    down = spans_all(srv, tid, limit)
    assert len(down) == 38 and len({s["id"] for s in down}) == 38
    keys = [(s["start_time_ms"], s["id"]) for s in down]
    assert [s["name"] for s in down if s["parent_span_id"] is None] == ["big"]
    up = spans_all(srv, tid, limit, direction="up", cursor=down[-1]["cursor"])
    assert [s["id"] for s in up] == [s["id"] for s in reversed(down[:-1])]
    assert len(keys) == len(set(keys))


def test_trace_spans_shape_and_span_name_filter(data: dict[str, Any]) -> None:
    srv, tid = data["srv"], data["big"]
    steps = spans_all(srv, tid, 3, spanName="step-2")
    assert len(steps) == 9 and {s["name"] for s in steps} == {"step-2"}
    s = steps[0]
    assert set(s) == {"id", "trace_id", "name", "kind", "parent_span_id", "latency_ms", "start_time_ms", "end_time_ms",
                      "organisation_id", "project_id", "session_id", "tenant_id", "user_id", "model_name",
                      "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens", "total_cost", "status",
                      "attributes", "events", "created_at", "cursor", "otel_kind", "links", "resources", "has_error",
                      "environment"}
    assert isinstance(s["attributes"], str) and isinstance(s["events"], str) and s["trace_id"] == tid
    # types as the Netra SDK's TraceSpan declares them
    assert isinstance(s["start_time_ms"], str) and int(s["start_time_ms"]) <= int(s["end_time_ms"])
    assert isinstance(s["links"], str) and isinstance(s["resources"], str) and s["kind"] == "SPAN"
    with srv.client() as c:
        assert c.get("/sdk/traces/nothex/spans").status_code == 400
        assert c.get(f"/sdk/traces/{tid}/spans", params={"limit": 0}).status_code == 400
        assert c.get(f"/sdk/traces/{tid}/spans", params={"limit": 5000}).status_code == 400
        assert c.get(f"/sdk/traces/{tid}/spans", params={"direction": "left"}).status_code == 400
        empty = c.get("/sdk/traces/" + "cd" * 16 + "/spans").json()["data"]
        assert empty == {"data": [], "pageInfo": {"hasNextPage": False}}
