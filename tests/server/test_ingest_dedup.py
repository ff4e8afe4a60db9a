"""Exactly-once under duplicate delivery over real HTTP: the same body again (answered from the digests
of acknowledged bodies), the same spans in other bodies, repeated within one request, and concurrent
duplicate requests; plus the attribute maps, events and links stored as the JSON the span carried.
Each test runs with the embedded store's ingest journal (answered once appended, inserted in batches)
and without it (answered after each group commit's INSERT)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan

from netra import semconv

from ._helpers import SEC, T0, record

_PB = {"content-type": "application/x-protobuf"}


@pytest.fixture(scope="module", params=[True, False], ids=["journal", "no-journal"])
def netra_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("netra-server"), journal=request.param) as srv:
        yield srv


def _spans(tenant: str, n: int) -> list[ReadableSpan]:
    provider, collect = record()
    tracer = provider.get_tracer("t")
    for i in range(n):
        s = tracer.start_span(f"call-{i}", start_time=T0 + i * SEC, attributes={
            semconv.TENANT_ID: tenant, semconv.SESSION_ID: f"{tenant}-s{i % 3}",
            semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", semconv.COST: 0.25,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 2,
        })
        s.end(end_time=T0 + i * SEC + 5_000_000)
    provider.shutdown()
    return list(collect.spans)


def _post(srv: RunningServer, body: bytes) -> ExportTraceServiceResponse:
    r = httpx.post(srv.otlp_endpoint, content=body, headers={**srv.headers, **_PB}, timeout=30)
    assert r.status_code == 200, r.text
    return ExportTraceServiceResponse.FromString(r.content)


def _usage(srv: RunningServer, tenant: str) -> dict[str, object]:
    with srv.client() as c:
        data: dict[str, object] = c.get(f"/usage/tenants/{tenant}").json()["data"]
    return data


def _stored(srv: RunningServer, tenant: str) -> tuple[int, int]:
    """(distinct spans, physical rows) of ``tenant``."""
    assert srv.store is not None
    p = {"p": srv.project_id, "t": tenant}
    distinct = srv.store.query(
        "SELECT count() AS n FROM netra_spans FINAL WHERE project_id = {p:String} AND tenant_id = {t:String}", p
    )[0]["n"]
    physical = srv.store.query(
        "SELECT count() AS n FROM netra_spans WHERE project_id = {p:String} AND tenant_id = {t:String}", p
    )[0]["n"]
    return int(distinct), int(physical)


def test_the_same_body_again_is_acknowledged_and_not_written_again(netra_server: RunningServer) -> None:
    body = encode_spans(_spans("retry-t", 4)).SerializeToString()
    assert not _post(netra_server, body).HasField("partial_success")
    assert not _post(netra_server, body).HasField("partial_success")  # an exporter retry
    data = _usage(netra_server, "retry-t")
    assert (data["requestsCount"], data["tokenCount"], data["totalCost"]) == (4, 48, 1.0)
    assert _stored(netra_server, "retry-t") == (4, 4)  # the retry did not insert the rows again


def test_a_retried_partial_success_answers_the_same(netra_server: RunningServer) -> None:
    req = encode_spans(_spans("partial-t", 2))
    req.resource_spans[0].scope_spans[0].spans[0].span_id = b"\0" * 8  # rejected
    body = req.SerializeToString()
    first, again = _post(netra_server, body), _post(netra_server, body)
    assert first.partial_success.rejected_spans == again.partial_success.rejected_spans == 1
    assert first.partial_success.error_message == again.partial_success.error_message != ""
    assert _usage(netra_server, "partial-t")["requestsCount"] == 1


def test_the_same_spans_in_other_bodies_and_within_one_request(netra_server: RunningServer) -> None:
    spans = _spans("rebatch-t", 5)
    _post(netra_server, encode_spans(spans[:3]).SerializeToString())
    _post(netra_server, encode_spans(spans[2:]).SerializeToString())        # overlaps on spans[2]
    _post(netra_server, encode_spans(spans[:1] * 3).SerializeToString())    # one span three times
    merged = ExportTraceServiceRequest()                                    # two resources, same spans
    merged.resource_spans.extend(encode_spans(spans[3:]).resource_spans)
    merged.resource_spans.extend(encode_spans(spans[3:]).resource_spans)
    _post(netra_server, merged.SerializeToString())
    data = _usage(netra_server, "rebatch-t")
    assert (data["requestsCount"], data["tokenCount"], data["sessionsCount"]) == (5, 60, 3)
    assert Decimal(str(data["totalCost"])) == Decimal("1.25")
    assert _stored(netra_server, "rebatch-t")[0] == 5
    with netra_server.client() as c:
        total = c.get("/api/usage/summary", params={"groupBy": "tenant", "tenantId": "rebatch-t"}).json()["data"]
    assert total["total"]["spanCount"] == 5 and total["total"]["requestsCount"] == 5


def test_concurrent_duplicate_requests_count_once(netra_server: RunningServer) -> None:
    spans = _spans("concurrent-t", 40)
    same = encode_spans(spans).SerializeToString()
    bodies = [same] * 6 + [encode_spans(spans[i::3]).SerializeToString() for i in range(3)] * 2
    errors: list[BaseException] = []
    go = threading.Barrier(len(bodies))

    def send(body: bytes) -> None:
        try:
            go.wait()
            _post(netra_server, body)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    data = _usage(netra_server, "concurrent-t")
    assert (data["requestsCount"], data["tokenCount"], data["sessionsCount"]) == (40, 480, 3)
    assert Decimal(str(data["totalCost"])) == Decimal("10")
    assert _stored(netra_server, "concurrent-t")[0] == 40


def test_attributes_events_and_links_are_stored_as_their_json(netra_server: RunningServer) -> None:
    provider, collect = record()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("linked") as other:
        pass
    attrs = {
        semconv.TENANT_ID: "json-attrs-t", "text": 'quote " backslash \\ tab \t newline \n é 中 \u2028',
        "ints": [1, -2, 3], "floats": [0.5, 1e-7], "flag": True, "empty": "", "big": 2**62,
    }
    s = tracer.start_span("rich", attributes=attrs, links=[_link(other)])
    s.add_event("evt", attributes={"k": "v", "n": 3})
    s.end()
    provider.shutdown()
    _post(netra_server, encode_spans(collect.spans).SerializeToString())
    assert netra_server.store is not None
    tid = format(s.get_span_context().trace_id, "032x")
    row = {r.name: r for r in netra_server.store.trace_spans(netra_server.project_id, tid)[0]}["rich"]
    assert json.loads(row.attributes) == attrs
    events = json.loads(row.events)
    assert [(e["name"], e["attributes"]) for e in events] == [("evt", {"k": "v", "n": 3})]
    links = netra_server.store.query(
        "SELECT links FROM netra_spans FINAL WHERE trace_id = {t:String} AND name = 'rich'", {"t": tid}
    )[0]["links"]
    assert [ln["span_id"] for ln in json.loads(links)] == [format(other.get_span_context().span_id, "016x")]
    assert json.loads(row.resource_attributes)["service.name"] == "test-svc"


def _link(span: object) -> object:
    from opentelemetry.trace import Link

    return Link(span.get_span_context(), {"why": "because"})  # type: ignore[attr-defined]
