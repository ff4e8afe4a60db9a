"""The options objects: ``ClientOptions`` (a client's settings), ``TraceQuery`` and ``SpanQuery`` (the
arguments of the list/iter methods), each defined once and used by the sync and the async client alike.

Against the scripted server (real sockets): whatever a caller sets reaches the wire, the same from
both clients, and a field added to a query without its wire encoding fails here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from typing import Any

import pytest

from netra.usage import AsyncUsageClient, ClientOptions, SpanQuery, TraceQuery, UsageClient

from .scripted_server import Reply, ScriptedServer

START = "2025-01-01T00:00:00Z"
END = "2025-01-31T23:59:59Z"
EMPTY_PAGE = {"data": {"data": [], "pageInfo": {"hasNextPage": False}}}

#: A value other than the default for every TraceQuery / SpanQuery field (a new field must be added here).
TRACE_VALUES: dict[str, Any] = {
    "start_time": "2025-01-02T03:04:05Z",
    "end_time": "2025-01-09T00:00:00Z",
    "trace_id": "trace-7",
    "session_id": "session-7",
    "user_id": "user-7",
    "tenant_id": "tenant-7",
    "limit": 7,
    "cursor": "cursor-7",
    "direction": "up",
    "sort_field": "latency",
    "sort_order": "desc",
}
SPAN_VALUES: dict[str, Any] = {
    "trace_id": "trace-8",
    "cursor": "cursor-8",
    "direction": "up",
    "limit": 8,
    "span_name": "span-8",
}


def _wire(server: ScriptedServer, method: str, *args: Any, **kwargs: Any) -> list[tuple[str, str, str]]:
    """What ``method`` of a sync and of an async client sent for the same arguments: (path, query, body)."""
    sent = []
    server.script([Reply(200, EMPTY_PAGE), Reply(200, EMPTY_PAGE)])
    with UsageClient(server.base_url, "k") as client:
        getattr(client, method)(*args, **kwargs)

    async def run_async() -> None:
        async with AsyncUsageClient(server.base_url, "k") as client:
            await getattr(client, method)(*args, **kwargs)

    asyncio.run(run_async())
    for seen in server.seen[-2:]:
        sent.append((seen.raw_path, json.dumps(seen.query, sort_keys=True), seen.body.decode()))
    return sent


def test_the_methods_take_exactly_the_query_fields() -> None:
    for query, methods in ((TraceQuery, ("list_traces", "iter_traces")),
                           (SpanQuery, ("list_spans_by_trace_id", "iter_spans_by_trace_id"))):
        expected = [
            (f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
            for f in dataclasses.fields(query)
        ]
        for client in (UsageClient, AsyncUsageClient):
            for name in methods:
                params = list(inspect.signature(getattr(client, name)).parameters.values())
                assert params[0].name == "self"
                assert [(p.name, p.default) for p in params[1:]] == expected, (client.__name__, name)
    assert inspect.iscoroutinefunction(AsyncUsageClient.list_traces)
    assert not inspect.iscoroutinefunction(AsyncUsageClient.iter_traces)
    assert set(TRACE_VALUES) == {f.name for f in dataclasses.fields(TraceQuery)}
    assert set(SPAN_VALUES) == {f.name for f in dataclasses.fields(SpanQuery)}


def test_every_trace_filter_reaches_the_wire_the_same_from_sync_and_async(server: ScriptedServer) -> None:
    sync, async_ = _wire(server, "list_traces", **TRACE_VALUES)
    assert sync == async_
    body = json.loads(sync[2])
    assert body == {
        "startTime": "2025-01-02T03:04:05Z",
        "endTime": "2025-01-09T00:00:00Z",
        "filters": [
            {"field": name, "operator": "equals", "type": "string", "value": TRACE_VALUES[name]}
            for name in ("trace_id", "session_id", "user_id", "tenant_id")
        ],
        "pagination": {"direction": "up", "limit": 7, "cursor": "cursor-7"},
        "sortField": "latency",
        "sortOrder": "desc",
    }
    # positionally, in the field order, the same request
    assert _wire(server, "list_traces", *TRACE_VALUES.values()) == [sync, sync]


@pytest.mark.parametrize("name", [n for n in TRACE_VALUES if n not in ("start_time", "end_time")])
def test_each_trace_argument_alone_changes_the_request(server: ScriptedServer, name: str) -> None:
    # a field added to TraceQuery but not sent would leave the request as the bare one
    bare = _wire(server, "list_traces", START, END)
    one = _wire(server, "list_traces", START, END, **{name: TRACE_VALUES[name]})
    assert one[0] == one[1] and bare[0] == bare[1]
    assert one[0] != bare[0]
    assert str(TRACE_VALUES[name]) in one[0][2]


def test_every_span_argument_reaches_the_wire_the_same_from_sync_and_async(server: ScriptedServer) -> None:
    sync, async_ = _wire(server, "list_spans_by_trace_id", **SPAN_VALUES)
    assert sync == async_
    assert sync[0] == "/sdk/traces/trace-8/spans"
    assert json.loads(sync[1]) == {"cursor": "cursor-8", "direction": "up", "limit": "8", "spanName": "span-8"}
    assert _wire(server, "list_spans_by_trace_id", *SPAN_VALUES.values()) == [sync, sync]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"limit": 0}, ValueError),
        ({"limit": True}, ValueError),
        ({"direction": "sideways"}, ValueError),
        ({"sort_order": "up"}, ValueError),
        ({"tenant_id": ""}, ValueError),
        ({"user_id": 5}, TypeError),
        ({"cursor": ""}, ValueError),
        ({"start_time": END, "end_time": START}, ValueError),
        ({"start_time": "2025-01-01"}, ValueError),
    ],
)
def test_a_bad_query_raises_before_any_request(server: ScriptedServer, bad: dict[str, Any], error: type) -> None:
    args = {"start_time": START, "end_time": END, **bad}
    with pytest.raises(error):
        TraceQuery(**args)
    with UsageClient(server.base_url, "k") as client:
        with pytest.raises(error):
            client.list_traces(**args)
        with pytest.raises(error):
            client.iter_traces(**args)  # at the call, before the first page is asked for

    async def run_async() -> None:
        async with AsyncUsageClient(server.base_url, "k") as client:
            pending = client.list_traces(**args)  # an async method raises when awaited, as before
            with pytest.raises(error):
                await pending
            with pytest.raises(error):
                client.iter_traces(**args)

    asyncio.run(run_async())
    assert server.seen == []


def test_a_query_is_frozen_and_replace_checks_again() -> None:
    query = TraceQuery(START, END, tenant_id="acme", limit=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.limit = 6  # type: ignore[misc]
    assert dataclasses.replace(query, cursor="c1").cursor == "c1"
    with pytest.raises(ValueError, match="limit"):
        dataclasses.replace(query, limit=-1)
    assert query.id_filters() == {"tenant_id": "acme"}
    assert query == TraceQuery(START, END, tenant_id="acme", limit=5)
    with pytest.raises(ValueError, match="trace_id"):
        SpanQuery("")


def test_client_options_are_frozen_and_keep_a_copy_of_the_headers() -> None:
    headers = {"x-team": "a"}
    options = ClientOptions("http://h:1", "secret-key", headers, timeout=2)
    headers["x-team"] = "changed"
    headers["x-new"] = "1"
    assert dict(options.headers or {}) == {"x-team": "a"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.timeout = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.headers["x-team"] = "b"  # type: ignore[index]
    assert "secret" not in repr(options) and "x-team" not in repr(options)
    assert dataclasses.replace(options, timeout=3).timeout == 3 and options.timeout == 2


@pytest.mark.parametrize(
    "bad",
    [{"timeout": 0}, {"timeout": -1}, {"timeout": float("nan")}, {"max_retries": -1}, {"backoff_factor": -0.1},
     {"max_retry_wait": -1}],
)
def test_client_options_reject_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClientOptions(**bad)
    with pytest.raises(ValueError):
        UsageClient(**bad)
    with pytest.raises(ValueError):
        AsyncUsageClient(**bad)


@pytest.mark.parametrize("bad", [{"timeout": "10"}, {"timeout": None}, {"max_retries": True}, {"backoff_factor": "1"}])
def test_client_options_take_numbers_only(bad: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="must be a number"):
        ClientOptions(**bad)


def test_client_options_store_the_types_the_client_uses() -> None:
    options = ClientOptions(timeout=3, max_retries=2.0, backoff_factor=1, max_retry_wait=4)
    assert (options.timeout, options.max_retries, options.backoff_factor, options.max_retry_wait) == (3.0, 2, 1.0, 4.0)
    assert type(options.timeout) is float and type(options.max_retries) is int


def test_from_options_is_the_client_the_arguments_build(server: ScriptedServer) -> None:
    args: dict[str, Any] = {"headers": {"X-Team": "a", "x-netra-consistency": "bounded"}, "timeout": 4.0,
                            "max_retries": 0, "backoff_factor": 0.2, "max_retry_wait": 2.0}
    options = ClientOptions(server.base_url + "/telemetry", "key-1", **args)
    body = {"data": {"tenant_id": "t", "tokenCount": 0, "requestsCount": 0, "sessionsCount": 0, "totalCost": 0}}
    server.script([Reply(200, body)] * 4)
    sent = []
    for client in (UsageClient(server.base_url + "/telemetry", "key-1", **args), UsageClient.from_options(options)):
        with client:
            assert client.options == options and client.base_url == server.base_url
            client.get_tenant_usage("t", START, END)
        sent.append(server.seen[-1].headers)

    async def run_async() -> None:
        for client in (AsyncUsageClient(server.base_url + "/telemetry", "key-1", **args),
                       AsyncUsageClient.from_options(options)):
            async with client:
                assert client.options == options
                await client.get_tenant_usage("t", START, END)
            sent.append(server.seen[-1].headers)

    asyncio.run(run_async())
    for headers in sent:
        assert headers["x-api-key"] == "key-1" and headers["x-team"] == "a"
        assert headers["x-netra-consistency"] == "bounded"
    assert len({json.dumps({k: v for k, v in h.items() if k != "user-agent"}, sort_keys=True) for h in sent}) == 1


def test_no_retry_with_max_retries_zero_from_options(server: ScriptedServer) -> None:
    server.script([Reply(503, {"error": {"message": "busy"}})] * 3)
    client = UsageClient.from_options(ClientOptions(server.base_url, "k", max_retries=0))
    with client, pytest.raises(Exception, match="503"):
        client.get_tenant_usage("t", START, END)
    assert len(server.seen) == 1


@pytest.mark.parametrize("pair", ["usage", "credits"])
def test_the_async_twin_takes_the_same_arguments(pair: str) -> None:
    from netra.credits import AsyncCreditsClient, CreditsClient

    sync, async_ = (UsageClient, AsyncUsageClient) if pair == "usage" else (CreditsClient, AsyncCreditsClient)
    skip = {"close", "aclose"}
    names = {n for n in dir(sync) if not n.startswith("_") and callable(getattr(sync, n))} - skip
    assert names == {n for n in dir(async_) if not n.startswith("_") and callable(getattr(async_, n))} - skip
    for name in sorted(names):
        params = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(sync, name)).parameters.values()]
        twin = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(async_, name)).parameters.values()]
        assert params == twin, name
