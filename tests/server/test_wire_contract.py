"""The usage API's wire contract, against a real server with data: every key the server sends is a key
the usage client reads, and every key the client reads is one the server sends (or one only the Netra
cloud sends, which the shape lists in ``cloud_only``); both are the fields of the one definition of
each shape, :mod:`netra.usage.wire`, from which the OpenAPI document is generated too.

Spans go in through the real OpenTelemetry SDK and OTLP exporter. Each usage call of the client
(``netra.usage._calls``: the request it sends and how it reads the answer) is sent over HTTP and its
answer read by the client's own reader, recording which key of which shape it looked up."""

from __future__ import annotations

import json
import time
import types
import typing
from decimal import Decimal
from typing import Any

import httpx
import pytest
from netra_server.testing import RunningServer
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from pydantic import BaseModel

from netra import semconv
from netra.usage import _calls, wire
from netra.usage._read import recording_reads
from netra.usage.options import SpanQuery, TraceQuery

from ._helpers import record, send

#: Keys the server sends that the client's result models do not read, and why.
NOT_READ = {
    # the published netra-sdk's TraceSpan has no such field, and ours keeps its fields
    # (tests/compat/test_result_models.py); it is there for other readers of the answer
    ("TraceSpan", "otel_kind"),
}


@pytest.fixture(scope="module")
def traces(netra_server: RunningServer) -> dict[str, str]:
    """Two traces: apex (a covered parent over two priced calls, one unpriced call) and stratex (an
    unknown model that failed)."""
    provider, collect = record()
    tr = provider.get_tracer("t")
    now = time.time_ns()
    apex = {semconv.TENANT_ID: "apex", semconv.SESSION_ID: "s-1", semconv.USER_ID: "alice"}
    root = tr.start_span(
        "meeting", start_time=now - 3_000_000_000, attributes={**apex, semconv.USAGE_COVERED: True}
    )
    for i, cost in enumerate((0.1, 0.2, None)):
        attrs: dict[str, Any] = {
            **apex,
            semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini" if cost else "mystery-1",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 500,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 250,
        }
        if cost is not None:
            attrs |= {semconv.COST: cost, semconv.COST_SOURCE: "provider"}
        call = tr.start_span(
            f"chat {i}",
            context=set_span_in_context(root),
            start_time=now - 2_900_000_000 + i,
            attributes=attrs,
        )
        call.add_event("retry", {"attempt": 1})
        call.end(end_time=now - 2_000_000_000)
    root.end(end_time=now - 1_000_000_000)
    failed = tr.start_span(
        "chat mystery",
        start_time=now - 2_000_000_000,
        attributes={
            semconv.TENANT_ID: "stratex",
            semconv.GEN_AI_RESPONSE_MODEL: "mystery-model-1",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        },
    )
    failed.set_status(Status(StatusCode.ERROR, "boom"))
    failed.end(end_time=now - 1_500_000_000)
    assert send(netra_server, collect.spans) is SpanExportResult.SUCCESS
    provider.shutdown()
    return {
        "apex": format(root.get_span_context().trace_id, "032x"),
        "call": format(failed.get_span_context().span_id, "016x"),
    }


def _calls_of_the_client(traces: dict[str, str]) -> list[tuple[_calls.Call[Any], type[BaseModel]]]:
    """Every usage call of the client, with the wire shape of its answer."""
    a, b = "2000-01-01T00:00:00Z", "2200-01-01T00:00:00Z"
    out: list[tuple[_calls.Call[Any], type[BaseModel]]] = [
        (_calls.session_usage("s-1", a, b), wire.SessionUsageResponse),
        (_calls.tenant_usage("apex", a, b), wire.TenantUsageResponse),
        (_calls.list_traces(TraceQuery(a, b)), wire.TracesResponse),
        (_calls.list_spans(SpanQuery(traces["apex"])), wire.TraceSpansResponse),
        (_calls.trace_usage(traces["apex"]), wire.TraceUsageResponse),
    ]
    for include_costs in (True, False):
        out.append(
            (
                _calls.call_usage([traces["apex"]], [traces["call"]], include_costs=include_costs),
                wire.CallUsageResponse,
            )
        )
    for group_by in ("tenant", "model", "user", "session", "day"):
        out.append((_calls.usage_summary(a, b, group_by), wire.UsageSummaryResponse))  # type: ignore[arg-type]
    return out


def _sent(value: Any, shape: Any, out: set[tuple[str, str]]) -> None:
    """Add ``(shape, key)`` for every key of every object in ``value``, an answer of ``shape``."""
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        assert isinstance(value, dict), (shape.__name__, value)
        for key, item in value.items():
            out.add((shape.__name__, key))
            if key in shape.model_fields:
                _sent(item, shape.model_fields[key].annotation, out)
    elif origin is list:
        for item in value:
            _sent(item, args[0], out)
    elif origin is dict:
        for item in value.values():
            _sent(item, args[1], out)
    elif origin in (typing.Union, types.UnionType) and value is not None:
        for option in args:
            if option is not type(None):
                _sent(value, option, out)


def _declared(shape: type[BaseModel]) -> set[str]:
    return set(shape.model_fields)


@pytest.fixture(scope="module")
def exchanges(netra_server: RunningServer, traces: dict[str, str]) -> list[dict[str, Any]]:
    """Each call sent over HTTP; its answer, the keys it sent and the keys the client read of it."""
    out = []
    with netra_server.client() as c:
        for call, shape in _calls_of_the_client(traces):
            r = c.request(call.method, call.path, params=call.params, json=call.json)
            assert r.status_code == 200, (call.path, r.text)
            body = json.loads(r.content, parse_float=Decimal)  # as the client decodes
            sent: set[tuple[str, str]] = set()
            _sent(body, shape, sent)
            with recording_reads() as read:
                result = call.parse(body)
            assert result is not None
            out.append({"call": call, "shape": shape, "body": body, "sent": sent, "read": set(read)})
    return out


def _shapes() -> dict[str, type[BaseModel]]:
    return {
        name: obj
        for name in wire.__all__
        if isinstance(obj := getattr(wire, name), type) and issubclass(obj, BaseModel)
    }


def test_the_answers_are_not_empty(exchanges: list[dict[str, Any]]) -> None:
    """The checks below are about real content: pages, spans and groups with items."""
    by_path = {e["call"].path: e["body"]["data"] for e in exchanges}
    assert len(by_path["/sdk/traces"]["data"]) == 2
    spans = next(v for k, v in by_path.items() if k.endswith("/spans"))
    assert len(spans["data"]) == 4 and {s["total_cost"] for s in spans["data"]} == {
        None,
        Decimal("0.1"),
        Decimal("0.2"),
    }
    usage = next(v for k, v in by_path.items() if k.endswith("/usage") and k.startswith("/api/traces"))
    assert len(usage["spans"]) == 4


def test_every_key_the_server_sends_is_read_by_the_client(exchanges: list[dict[str, Any]]) -> None:
    for e in exchanges:
        unread = e["sent"] - e["read"] - NOT_READ
        assert not unread, (e["call"].method, e["call"].path, sorted(unread))


def test_every_key_the_client_reads_is_sent_by_the_server(exchanges: list[dict[str, Any]]) -> None:
    shapes = _shapes()
    sent = set().union(*(e["sent"] for e in exchanges))
    read = set().union(*(e["read"] for e in exchanges))
    assert {s for s, _ in read} <= set(shapes), (
        "the client reads a shape that netra.usage.wire does not define"
    )
    cloud = {(s, k) for s, k in read if k in getattr(shapes[s], "cloud_only", frozenset())}
    assert read - cloud <= sent, sorted(read - cloud - sent)
    # cloud-only keys are declared as such, and are not fields of the shape
    for s, k in cloud:
        assert k not in shapes[s].model_fields, (s, k)


def test_the_server_sends_exactly_the_declared_fields(exchanges: list[dict[str, Any]]) -> None:
    """Over all the answers, each shape's keys are its declared fields (a field left unset is not
    sent: ModelUsage's costs without include_costs)."""
    sent = set().union(*(e["sent"] for e in exchanges))
    shapes = _shapes()
    seen = {s for s, _ in sent}
    assert seen == {name for name, cls in shapes.items()}, "a shape of netra.usage.wire is not answered"
    for name in seen:
        assert {k for s, k in sent if s == name} == _declared(shapes[name]), name
    without_costs = next(
        e for e in exchanges if e["call"].json and e["call"].json.get("include_costs") is False
    )
    assert ("ModelUsage", "total_cost") not in without_costs["sent"]
    assert ("ModelUsage", "requests") in without_costs["sent"]


def test_the_openapi_document_declares_the_same_fields(
    netra_server: RunningServer, exchanges: list[dict[str, Any]]
) -> None:
    spec = httpx.get(netra_server.base_url + "/openapi.json").json()
    components = spec["components"]["schemas"]
    for name, shape in _shapes().items():
        assert set(components[name]["properties"]) == _declared(shape), name
    for e in exchanges:  # each route documents its answer with the shape the client reads it as
        call = e["call"]
        template = next(p for p in spec["paths"] if _matches(p, call.path))
        schema = spec["paths"][template][call.method.lower()]["responses"]["200"]["content"][
            "application/json"
        ]
        assert schema["schema"] == {"$ref": f"#/components/schemas/{e['shape'].__name__}"}, call.path


def _matches(template: str, path: str) -> bool:
    a, b = template.strip("/").split("/"), path.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x.startswith("{") for x, y in zip(a, b, strict=True))


def test_the_recorder_sees_a_key_the_client_does_not_read(exchanges: list[dict[str, Any]]) -> None:
    """The check itself: a key added to an answer is sent but not read."""
    e = next(e for e in exchanges if e["shape"] is wire.TenantUsageResponse)
    body = {"data": {**e["body"]["data"], "surprise": 1}}
    sent: set[tuple[str, str]] = set()
    _sent(body, wire.TenantUsageResponse, sent)
    with recording_reads() as read:
        e["call"].parse(body)
    assert sent - read == {("TenantUsage", "surprise")}
