"""The usage client against a real HTTP server that answers well, badly, slowly, or not at all.

Every test runs twice: with UsageClient and with AsyncUsageClient.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from netra_server.launch import free_port

from netra.usage import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    NetraUsageError,
    NetworkError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SessionUsageData,
    TenantUsageData,
    TimeoutError,
)

from .conftest import Driver
from .scripted_server import Reply, ScriptedServer, traces_server_handler

START = "2025-01-01T00:00:00Z"
END = "2025-01-31T23:59:59Z"
MakeDriver = Callable[..., Driver]

SESSION_OK = {"data": {"session_id": "s-1", "tokenCount": 1500, "requestsCount": 3, "totalCost": 0.0123}}
TENANT_OK = {
    "data": {
        "tenant_id": "acme",
        "organisation_id": "org-1",
        "tokenCount": 42,
        "requestsCount": 2,
        "sessionsCount": 1,
        "totalCost": 0.5,
        "somethingNew": [1, 2],
    }
}


def trace_item(i: int) -> dict[str, Any]:
    return {
        "id": f"{i:032x}",
        "name": f"trace-{i}",
        "kind": "SPAN_KIND_INTERNAL",
        "latency_ms": i,
        "start_time": "2025-01-02T00:00:00Z",
        "end_time": "2025-01-02T00:00:01Z",
        "cursor": f"c{i:04d}",
        "organisation_id": "org",
        "project_id": "proj",
        "tenant_id": "acme",
        "total_cost": 0.25,
        "models": ["gpt-4o-mini"],
        "unknown_field": {"x": 1},
    }


def span_item(i: int) -> dict[str, Any]:
    return {
        "id": f"{i:016x}",
        "trace_id": "ab" * 16,
        "name": f"span-{i}",
        "kind": "SPAN_KIND_INTERNAL",
        "parent_span_id": f"{i - 1:016x}" if i else "",
        "cursor": f"s{i:04d}",
        "created_at": "2025-01-02T00:00:00Z",
        "organisation_id": None,
        "project_id": "proj",
        "attributes": '{"netra.tenant_id": "acme"}',
        "events": "[]",
    }


# ------------------------------------------------------------------------------------------------
# What is sent


def test_session_usage_request_and_result(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, SESSION_OK)])
    d = driver()
    start = datetime(2025, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))  # = 00:00Z
    result = d.call("get_session_usage", "s-1", start, "2025-01-31T23:59:59.250+00:00")
    assert result == SessionUsageData(session_id="s-1", token_count=1500, request_count=3, total_cost=Decimal("0.0123"))
    (seen,) = server.seen
    assert seen.method == "GET"
    assert seen.raw_path == "/usage/sessions/s-1"
    assert seen.query == {"startTime": "2025-01-01T00:00:00Z", "endTime": "2025-01-31T23:59:59.250Z"}
    assert seen.headers["x-api-key"] == "test-key"
    assert seen.headers["user-agent"].startswith("netra-python-usage/")


def test_tenant_usage_ignores_extra_keys(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, TENANT_OK)])
    result = driver().call("get_tenant_usage", "acme", START, END)
    assert result == TenantUsageData(
        tenant_id="acme", organisation_id="org-1", token_count=42, request_count=2, session_count=1,
        total_cost=Decimal("0.5"),
    )
    assert server.seen[0].raw_path == "/usage/tenants/acme"


def test_zero_usage_is_zero_not_none(driver: MakeDriver, server: ScriptedServer) -> None:
    body = {"data": {"session_id": "quiet", "tokenCount": 0, "requestsCount": 0, "totalCost": 0}}
    server.script([Reply(200, body)])
    got = driver().call("get_session_usage", "quiet", START, END)
    assert got == SessionUsageData(session_id="quiet", token_count=0, request_count=0, total_cost=0.0,
                                   total_cost_usd=Decimal(0))


@pytest.mark.parametrize(
    ("method", "prefix"),
    [("get_session_usage", "/usage/sessions/"), ("get_tenant_usage", "/usage/tenants/")],
)
def test_ids_in_paths_are_escaped(driver: MakeDriver, server: ScriptedServer, method: str, prefix: str) -> None:
    ident = "a/b ?#%é&x=1"
    key = "session_id" if "session" in method else "tenant_id"
    body = {"data": {key: ident, "tokenCount": 0, "requestsCount": 0, "sessionsCount": 0, "totalCost": 0}}
    server.script([Reply(200, body)])
    driver().call(method, ident, START, END)
    assert server.seen[0].raw_path == prefix + "a%2Fb%20%3F%23%25%C3%A9%26x%3D1"
    assert set(server.seen[0].query) == {"startTime", "endTime"}


@pytest.mark.parametrize(("ident", "segment"), [(".", "%2E"), ("..", "%2E%2E"), ("...", "..."), ("a/..", "a%2F..")])
def test_dot_ids_are_not_dot_segments(driver: MakeDriver, server: ScriptedServer, ident: str, segment: str) -> None:
    # '.' and '..' as a whole segment would be resolved away by URL normalisation (another route)
    body = {"data": {"tenant_id": ident, "tokenCount": 0, "requestsCount": 0, "sessionsCount": 0, "totalCost": 0}}
    server.script([Reply(200, body)])
    driver().call("get_tenant_usage", ident, START, END)
    assert server.seen[0].raw_path == "/usage/tenants/" + segment


def test_list_traces_body(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, {"data": {"data": [trace_item(1)], "pageInfo": {"hasNextPage": True}}})])
    page = driver().call(
        "list_traces",
        START,
        END,
        tenant_id="acme",
        user_id="u1",
        limit=5,
        cursor="c0000",
        direction="up",
        sort_field="start_time",
        sort_order="desc",
    )
    assert server.seen[0].method == "POST" and server.seen[0].raw_path == "/sdk/traces"
    assert server.seen[0].json() == {
        "startTime": START,
        "endTime": END,
        "filters": [
            {"field": "user_id", "operator": "equals", "type": "string", "value": "u1"},
            {"field": "tenant_id", "operator": "equals", "type": "string", "value": "acme"},
        ],
        "pagination": {"direction": "up", "limit": 5, "cursor": "c0000"},
        "sortField": "start_time",
        "sortOrder": "desc",
    }
    assert page.has_next_page is True
    assert page.next_cursor == "c0001"
    assert page.traces[0].id == f"{1:032x}"
    assert page.traces[0].models == ["gpt-4o-mini"]


def test_list_spans_query(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, {"data": {"data": [span_item(0), span_item(1)], "pageInfo": {"hasNextPage": False}}})])
    page = driver().call("list_spans_by_trace_id", "t/1", cursor="s0000", limit=2, span_name="llm call")
    seen = server.seen[0]
    assert seen.raw_path == "/sdk/traces/t%2F1/spans"
    assert seen.query == {"direction": "down", "cursor": "s0000", "limit": "2", "spanName": "llm call"}
    assert [s.name for s in page.spans] == ["span-0", "span-1"]
    assert page.spans[0].parent_span_id is None
    assert page.spans[1].attributes_dict() == {"netra.tenant_id": "acme"}
    assert page.has_next_page is False and page.next_cursor == "s0001"


def test_money_is_read_with_its_exact_digits(driver: MakeDriver, server: ScriptedServer) -> None:
    # 18 significant digits: a float would round it (to 12345678.012345679), and the costs below
    # add up exactly only as decimals (0.1 + 0.2 != 0.3 in binary).
    total = "12345678.0123456789"
    assert Decimal(float(total)) != Decimal(total)
    session = '{"data": {"session_id": "s", "tokenCount": 9007199254740993, "requestsCount": 2, "totalCost": %s}}'
    traces = (
        '{"data": {"data": ['
        '{"id": "t1", "name": "a", "kind": "k", "latency_ms": 1, "start_time": "s", "end_time": "e", "cursor": "c1",'
        ' "organisation_id": null, "project_id": "p", "total_cost": 0.1, "total_tokens": 3},'
        '{"id": "t2", "name": "b", "kind": "k", "latency_ms": 2, "start_time": "s", "end_time": "e", "cursor": "c2",'
        ' "organisation_id": null, "project_id": "p", "total_cost": 0.2, "total_tokens": 4}'
        '], "pageInfo": {"hasNextPage": false}}}'
    )
    spans = (
        '{"data": {"data": [{"id": "s1", "trace_id": "t1", "name": "n", "kind": "k", "cursor": "c", "created_at": null,'
        ' "organisation_id": null, "project_id": "p", "total_cost": null,'
        ' "attributes": {"temperature": 0.7, "n": 2}, "events": []}], "pageInfo": {"hasNextPage": false}}}'
    )
    server.script([Reply(200, session % total), Reply(200, traces), Reply(200, spans)])
    d = driver()
    usage = d.call("get_session_usage", "s", START, END)
    assert type(usage.total_cost_usd) is Decimal and usage.total_cost_usd == Decimal(total)
    assert type(usage.total_cost) is float and usage.total_cost == float(total)  # netra-sdk's type
    assert usage.token_count == 9007199254740993 and type(usage.token_count) is int  # over 2**53: still exact
    page = d.call("list_traces", START, END)
    costs = [t.total_cost_usd for t in page.traces]
    assert all(type(c) is Decimal for c in costs) and sum(costs) == Decimal("0.3")
    assert [type(t.total_tokens) for t in page.traces] == [int, int]
    span = d.call("list_spans_by_trace_id", "t1").spans[0]
    assert span.total_cost is None and span.total_cost_usd is None  # an unknown price stays unknown
    # Numbers that are not money come back as they were sent (a float stays a float).
    assert span.attributes_dict() == {"temperature": 0.7, "n": 2}


def test_headers_from_environment(
    driver: MakeDriver, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETRA_HEADERS", "x-team=billing%20ops, x-api-key=from-headers")
    monkeypatch.setenv("NETRA_API_KEY", "from-env")
    monkeypatch.setenv("NETRA_OTLP_ENDPOINT", server.base_url + "/telemetry")
    server.script([Reply(200, SESSION_OK)])
    d = driver(base_url=None, api_key=None, headers={"X-Extra": "1"})
    d.call("get_session_usage", "s-1", START, END)
    headers = server.seen[0].headers
    assert headers["x-team"] == "billing ops"
    assert headers["x-api-key"] == "from-env"  # NETRA_API_KEY wins over a key inside NETRA_HEADERS
    assert headers["x-extra"] == "1"


# ------------------------------------------------------------------------------------------------
# Errors


def test_not_found_is_none_only_with_the_servers_error_body(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script(
        [
            Reply(404, {"error": {"message": "session not found"}}),
            Reply(404, {"error": {"message": "trace not found"}}),
            Reply(404, {"detail": "Not Found"}),
            Reply(404, "<html>nginx</html>", headers={"content-type": "text/html"}),
        ]
    )
    d = driver()
    assert d.call("get_session_usage", "nobody", START, END) is None
    assert d.call("list_spans_by_trace_id", "f" * 32) is None
    # A 404 without the server's error body means a wrong URL, not "no such session".
    with pytest.raises(NotFoundError, match="base URL") as info:
        d.call("get_tenant_usage", "acme", START, END)
    assert info.value.status_code == 404
    with pytest.raises(NotFoundError, match="NETRA_OTLP_ENDPOINT"):
        d.call("list_traces", START, END)


def test_a_structured_error_detail_is_shown_as_its_json(driver: MakeDriver, server: ScriptedServer) -> None:
    """A proxy or framework answering ``{"detail": [...]}`` (FastAPI's 422): its JSON, numbers as sent."""
    detail = [{"loc": ["query", "limit"], "msg": "too large", "max": 1000.5}]
    server.script([Reply(422, {"detail": detail})])
    with pytest.raises(BadRequestError) as info:
        driver().call("get_tenant_usage", "acme", START, END)
    assert '[{"loc": ["query", "limit"], "msg": "too large", "max": 1000.5}]' in str(info.value)


def test_unknown_trace_iterates_nothing(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(404, {"error": {"message": "trace not found"}})])
    assert driver().collect("iter_spans_by_trace_id", "f" * 32) == []


def test_wrong_key_says_so(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(401, {"error": {"message": "invalid API key"}})])
    with pytest.raises(AuthenticationError) as info:
        driver(api_key="wrong").call("get_tenant_usage", "acme", START, END)
    assert "NETRA_API_KEY" in str(info.value) and "invalid API key" in str(info.value)
    assert info.value.status_code == 401
    assert len(server.seen) == 1  # never retried


def test_missing_key_says_none_was_sent(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(401, {"error": {"message": "missing API key"}})])
    with pytest.raises(AuthenticationError, match="no API key was sent"):
        driver(api_key=None).call("get_tenant_usage", "acme", START, END)
    assert "x-api-key" not in server.seen[0].headers


def test_forbidden_is_an_authentication_error(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(403, {"error": {"message": "key limited to tenant 'beta'"}})])
    with pytest.raises(PermissionDeniedError, match="key's project") as info:
        driver().call("get_tenant_usage", "acme", START, END)
    assert isinstance(info.value, AuthenticationError)
    assert info.value.server_message == "key limited to tenant 'beta'"


def test_bad_request_carries_server_message(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(400, {"error": {"message": "startTime is not a time"}})])
    with pytest.raises(BadRequestError, match="startTime is not a time") as info:
        driver().call("list_traces", START, END)
    assert info.value.server_message == "startTime is not a time"
    assert len(server.seen) == 1


def test_server_errors_are_retried_then_succeed(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(500, {"error": {"message": "boom"}}), Reply(503), Reply(200, TENANT_OK)])
    assert driver().call("get_tenant_usage", "acme", START, END).token_count == 42
    assert len(server.seen) == 3


def test_server_error_after_retries_raises(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(502, {"error": {"message": "bad gateway"}}))
    with pytest.raises(ServerError, match="HTTP 502 after 3 attempt") as info:
        driver(max_retries=2).call("get_session_usage", "s-1", START, END)
    assert info.value.status_code == 502 and info.value.server_message == "bad gateway"
    assert len(server.seen) == 3


def test_post_is_retried_too(driver: MakeDriver, server: ScriptedServer) -> None:
    ok = {"data": {"data": [], "pageInfo": {"hasNextPage": False}}}
    server.script([Reply(500), Reply(200, ok)])
    assert driver().call("list_traces", START, END).traces == []
    assert [s.json() for s in server.seen][0] == server.seen[1].json()


def test_rate_limit_honours_retry_after(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(429, headers={"retry-after": "0"}), Reply(200, SESSION_OK)])
    assert driver().call("get_session_usage", "s-1", START, END).request_count == 3
    assert len(server.seen) == 2


def test_retry_after_longer_than_the_cap_raises_at_once(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "120"}))
    with pytest.raises(RateLimitError, match="asked to wait 120 s") as info:
        driver(max_retry_wait=5).call("get_session_usage", "s-1", START, END)
    assert info.value.retry_after == 120
    assert len(server.seen) == 1


def test_rate_limit_after_retries_raises(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(429, headers={"retry-after": "0"}))
    with pytest.raises(RateLimitError):
        driver(max_retries=1).call("get_session_usage", "s-1", START, END)
    assert len(server.seen) == 2


def test_slow_answer_times_out(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(200, SESSION_OK, delay=5))
    with pytest.raises(TimeoutError, match="within 0.2 s after 2 attempt") as info:
        driver(timeout=0.2, max_retries=1).call("get_session_usage", "s-1", START, END)
    assert isinstance(info.value, builtins.TimeoutError)
    assert isinstance(info.value, NetworkError)
    assert len(server.seen) == 2


def test_slow_answer_then_fast_answer(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, SESSION_OK, delay=5), Reply(200, SESSION_OK)])
    assert driver(timeout=0.3).call("get_session_usage", "s-1", START, END).token_count == 1500
    assert len(server.seen) == 2


def test_truncated_body_is_retried(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, SESSION_OK, truncate=True), Reply(200, SESSION_OK)])
    assert driver().call("get_session_usage", "s-1", START, END).total_cost_usd == Decimal("0.0123")
    assert len(server.seen) == 2


def test_truncated_body_every_time_raises(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(200, SESSION_OK, truncate=True))
    with pytest.raises(NetworkError, match="complete answer"):
        driver(max_retries=2).call("get_session_usage", "s-1", START, END)
    assert len(server.seen) == 3


def test_cut_json_with_honest_length_raises(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(200, '{"data": {"session_id": "s-1", "tokenC'))
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        driver(max_retries=1).call("get_session_usage", "s-1", START, END)
    assert len(server.seen) == 2


def test_dropped_connection_raises_network_error(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(drop=True), Reply(200, SESSION_OK)])
    assert driver().call("get_session_usage", "s-1", START, END).session_id == "s-1"
    server.script([], then=Reply(drop=True))
    with pytest.raises(NetworkError):
        driver(max_retries=1).call("get_session_usage", "s-1", START, END)


def test_wrong_json_shape_is_not_retried(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script(
        [
            Reply(200, {"data": {"session_id": "s-1", "tokenCount": 1}}),
            Reply(200, ["not", "an", "object"]),
            Reply(200, {"data": {"items": []}}),
            Reply(200, {"data": {"data": [], "pageInfo": {}}}),
            Reply(200, {"data": {"session_id": "s-1", "tokenCount": "many", "requestsCount": 1, "totalCost": 0}}),
        ]
    )
    d = driver()
    with pytest.raises(InvalidResponseError, match="'requestsCount'"):
        d.call("get_session_usage", "s-1", START, END)
    with pytest.raises(InvalidResponseError, match="JSON object"):
        d.call("get_session_usage", "s-1", START, END)
    with pytest.raises(InvalidResponseError, match="data.data"):
        d.call("list_traces", START, END)
    with pytest.raises(InvalidResponseError, match="hasNextPage"):
        d.call("list_traces", START, END)
    with pytest.raises(InvalidResponseError, match="tokenCount='many'"):
        d.call("get_session_usage", "s-1", START, END)
    assert len(server.seen) == 5


def test_unexpected_status_is_typed(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(409, {"error": {"message": "conflict"}}), Reply(302, headers={"location": "https://x/"})])
    d = driver()
    with pytest.raises(APIStatusError, match="HTTP 409: conflict"):
        d.call("get_session_usage", "s-1", START, END)
    with pytest.raises(APIStatusError, match="redirect"):
        d.call("get_session_usage", "s-1", START, END)


def test_connection_refused_raises_network_error(driver: MakeDriver) -> None:
    d = driver(base_url=f"http://127.0.0.1:{free_port()}", max_retries=1)
    with pytest.raises(NetworkError, match="Is the Netra server running") as info:
        d.call("get_session_usage", "s-1", START, END)
    assert not isinstance(info.value, TimeoutError)
    assert isinstance(info.value, NetraUsageError)


def test_bad_arguments_raise_before_any_request(driver: MakeDriver, server: ScriptedServer) -> None:
    d = driver()
    with pytest.raises(ValueError, match="naive"):
        d.call("get_session_usage", "s-1", datetime(2025, 1, 1), END)
    with pytest.raises(ValueError, match="no time zone"):
        d.call("get_tenant_usage", "acme", "2025-01-01T00:00:00", END)
    with pytest.raises(ValueError, match="after end_time"):
        d.call("get_tenant_usage", "acme", END, START)
    with pytest.raises(ValueError, match="session_id is empty"):
        d.call("get_session_usage", "", START, END)
    with pytest.raises(ValueError, match="direction"):
        d.call("list_traces", START, END, direction="sideways")
    with pytest.raises(ValueError, match="limit"):
        d.call("list_spans_by_trace_id", "t", limit=0)
    with pytest.raises(ValueError, match="limit"):
        d.collect("iter_traces", START, END, limit=-1)
    assert server.seen == []


# ------------------------------------------------------------------------------------------------
# Pagination


@pytest.mark.parametrize("direction", ["down", "up"])
def test_iter_traces_every_page_size(driver: MakeDriver, server: ScriptedServer, direction: str) -> None:
    items = [trace_item(i) for i in range(23)]
    server.handler = traces_server_handler(items)
    d = driver()
    expected = [t["id"] for t in (items if direction == "down" else reversed(items))]
    for limit in [1, 2, 3, 4, 5, 6, 7, 23, 50]:
        before = len(server.seen)
        got = [t.id for t in d.collect("iter_traces", START, END, limit=limit, direction=direction)]
        assert got == expected, limit
        pages = len(server.seen) - before
        assert pages == max(1, -(-23 // limit)), limit
        cursors = [s.json()["pagination"].get("cursor") for s in server.seen[before:]]
        assert len(set(cursors)) == len(cursors)


def test_iter_spans_pages(driver: MakeDriver, server: ScriptedServer) -> None:
    items = [span_item(i) for i in range(10)]
    server.handler = traces_server_handler(items)
    got = driver().collect("iter_spans_by_trace_id", "ab" * 16, limit=3, direction="up")
    assert [s.id for s in got] == [s["id"] for s in reversed(items)]
    assert [s.query.get("cursor") for s in server.seen] == [None, "s0007", "s0004", "s0001"]


def test_iter_starts_from_a_given_cursor(driver: MakeDriver, server: ScriptedServer) -> None:
    items = [trace_item(i) for i in range(6)]
    server.handler = traces_server_handler(items)
    got = driver().collect("iter_traces", START, END, limit=2, cursor="c0002")
    assert [t.name for t in got] == ["trace-3", "trace-4", "trace-5"]


def test_repeated_cursor_is_an_error(driver: MakeDriver, server: ScriptedServer) -> None:
    page = {"data": {"data": [trace_item(1), trace_item(2)], "pageInfo": {"hasNextPage": True}}}
    server.script([], then=Reply(200, page))
    with pytest.raises(PaginationError, match="c0002"):
        driver().collect("iter_traces", START, END, limit=2)
    assert len(server.seen) == 2


def test_cursor_cycle_is_an_error(driver: MakeDriver, server: ScriptedServer) -> None:
    a = {"data": {"data": [trace_item(1)], "pageInfo": {"hasNextPage": True}}}
    b = {"data": {"data": [trace_item(2)], "pageInfo": {"hasNextPage": True}}}
    server.script([Reply(200, a), Reply(200, b), Reply(200, a)])
    with pytest.raises(PaginationError, match="twice"):
        driver().collect("iter_traces", START, END, limit=1)
    assert len(server.seen) == 3


def test_next_page_without_items_is_an_error(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([], then=Reply(200, {"data": {"data": [], "pageInfo": {"hasNextPage": True}}}))
    with pytest.raises(PaginationError, match="no cursor"):
        driver().collect("iter_spans_by_trace_id", "t1")
    assert len(server.seen) == 1


def test_server_error_mid_iteration_raises(driver: MakeDriver, server: ScriptedServer) -> None:
    first = {"data": {"data": [trace_item(1)], "pageInfo": {"hasNextPage": True}}}
    server.script([Reply(200, first)], then=Reply(500, {"error": {"message": "store down"}}))
    with pytest.raises(ServerError, match="store down"):
        driver(max_retries=1).collect("iter_traces", START, END, limit=1)


def test_sync_iteration_is_lazy(server: ScriptedServer) -> None:
    from netra.usage import UsageClient

    server.handler = traces_server_handler([trace_item(i) for i in range(9)])
    with UsageClient(server.base_url, "k") as client:
        iterator = client.iter_traces(START, END, limit=3)
        assert server.seen == []
        first = next(iterator)
        assert first.name == "trace-0" and len(server.seen) == 1
        rest = [next(iterator) for _ in range(3)]
        assert rest[-1].name == "trace-3" and len(server.seen) == 2


async def test_async_iteration_is_lazy(server: ScriptedServer) -> None:
    from netra.usage import AsyncUsageClient

    server.handler = traces_server_handler([trace_item(i) for i in range(9)])
    async with AsyncUsageClient(server.base_url, "k") as client:
        iterator = client.iter_traces(START, END, limit=3)
        assert server.seen == []
        first = await anext(iterator)
        assert first.name == "trace-0" and len(server.seen) == 1
        names = [t.name async for t in iterator]
        assert names == [f"trace-{i}" for i in range(1, 9)] and len(server.seen) == 3


# ------------------------------------------------------------------------------------------------
# Lifecycle


def test_closed_client_refuses(server: ScriptedServer) -> None:
    from netra.usage import UsageClient

    server.script([Reply(200, SESSION_OK)])
    with UsageClient(server.base_url, "k") as client:
        assert client.get_session_usage("s-1", START, END) is not None
    assert client.closed
    client.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        client.get_session_usage("s-1", START, END)
    with pytest.raises(RuntimeError, match="closed"), client:
        pass


async def test_async_closed_client_refuses(server: ScriptedServer) -> None:
    from netra.usage import AsyncUsageClient

    client = AsyncUsageClient(server.base_url, "k")
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_session_usage("s-1", START, END)


def test_client_built_without_a_request_makes_no_connection(server: ScriptedServer) -> None:
    from netra.usage import UsageClient

    client = UsageClient(server.base_url, "k")
    client.close()
    assert server.seen == []


def test_times_are_sent_in_utc(driver: MakeDriver, server: ScriptedServer) -> None:
    server.script([Reply(200, SESSION_OK)])
    tz = timezone(timedelta(hours=-5, minutes=-30))
    driver().call(
        "get_session_usage",
        "s-1",
        datetime(2024, 12, 31, 18, 30, tzinfo=tz),
        datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
    )
    assert server.seen[0].query == {"startTime": "2025-01-01T00:00:00Z", "endTime": "2025-01-01T00:00:00.123456Z"}


# ------------------------------------------------------------------------------------------------
# Our own routes


def totals(**over: Any) -> dict[str, Any]:
    base = {
        "requestsCount": 2,
        "tokenCount": 30,
        "inputTokens": 20,
        "outputTokens": 10,
        "cachedTokens": 5,
        "totalCost": 0.75,
        "unpricedCount": 0,
        "sessionsCount": 1,
        "spanCount": 4,
    }
    return {**base, **over}


def test_usage_summary(driver: MakeDriver, server: ScriptedServer) -> None:
    body = {
        "data": {
            "groupBy": "model",
            "groups": [{"key": "gpt-4o", **totals()}, {"key": "gpt-4o-mini", **totals(totalCost=0.0)}],
            "total": totals(requestsCount=4, totalCost=0.75),
        }
    }
    server.script([Reply(200, body)])
    summary = driver().call("get_usage_summary", START, END, "model", tenant_id="acme", limit=10)
    seen = server.seen[0]
    assert seen.raw_path == "/api/usage/summary"
    assert seen.query == {"groupBy": "model", "startTime": START, "endTime": END, "tenantId": "acme", "limit": "10"}
    assert summary.group_by == "model"
    assert [(g.key, g.total_cost, g.input_tokens) for g in summary.groups] == [
        ("gpt-4o", Decimal("0.75"), 20),
        ("gpt-4o-mini", Decimal(0), 20),
    ]
    assert summary.total.request_count == 4


def test_usage_summary_rejects_unknown_grouping(driver: MakeDriver, server: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="group_by"):
        driver().call("get_usage_summary", START, END, "planet")
    assert server.seen == []


def test_trace_usage(driver: MakeDriver, server: ScriptedServer) -> None:
    rollup = {
        "requestsCount": 1,
        "inputTokens": 10,
        "outputTokens": 5,
        "cachedTokens": 0,
        "totalTokens": 15,
        "totalCost": 0.01,
        "unpricedCount": 0,
    }
    own = {"inputTokens": 10, "outputTokens": 5, "cachedTokens": 0, "totalTokens": 15, "cost": 0.01}
    span = {
        "span_id": "b" * 16,
        "parent_span_id": None,
        "name": "root",
        "span_type": "span",
        "model": None,
        "start_time": "2025-01-02T00:00:00Z",
        "tenant_id": "acme",
        "has_usage": True,
        "covered": True,
        "counted": False,
        "cost_source": "user",
        "costUnknown": False,
        "own": own,
        "rollup": rollup,
    }
    server.script(
        [
            Reply(200, {"data": {"trace_id": "a" * 32, "spans": [span], "total": rollup}}),
            Reply(404, {"error": {"message": f"no spans of trace {'c' * 32} (in this project)"}}),
            Reply(404, {"error": {"message": "Not Found"}}),
        ]
    )
    d = driver()
    usage = d.call("get_trace_usage", "a" * 32)
    assert server.seen[0].raw_path == f"/api/traces/{'a' * 32}/usage"
    root = usage.span("b" * 16)
    assert (root.covered, root.counted, root.own.cost, root.rollup.total_tokens) == (True, False, Decimal("0.01"), 15)
    assert usage.total.total_cost == Decimal("0.01")
    assert d.call("get_trace_usage", "c" * 32) is None
    # The server's generic route miss is a wrong URL, not a missing trace.
    with pytest.raises(NotFoundError, match="base URL"):
        d.call("get_trace_usage", "c" * 32)
