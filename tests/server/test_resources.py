"""Resources stored once (``netra_resources``, ``core-0008``): a span row names its resource, whose
attributes a read of the spans shows as they were sent; a short resource stays in the row; rows
written before stay readable; a project never reads another's resource; and a resource the store
cannot write leaves its spans unacknowledged (503), never a row that names nothing. Real server over
HTTP (with and without the ingest journal), real chDB store, real SDK spans and OTLP encoder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from netra_server import schema
from netra_server.config import Limits
from netra_server.otlp import build_rows
from netra_server.store import core
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from netra import semconv

from ._helpers import SEC, T0, Collect

_PB = {"content-type": "application/x-protobuf"}
PREFIX = schema.RESOURCE_REF_PREFIX


@pytest.fixture(scope="module", params=[True, False], ids=["journal", "no-journal"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("netra-resources"), journal=request.param) as s:
        yield s


def _spans(resource: Resource, tenant: str, n: int, first: int = 0) -> list[ReadableSpan]:
    collect = Collect()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(collect))
    tracer = provider.get_tracer("t")
    for i in range(first, first + n):
        tracer.start_span(f"call-{i}", start_time=T0 + i * SEC, attributes={
            semconv.TENANT_ID: tenant, semconv.COST: 0.5, semconv.GEN_AI_USAGE_INPUT_TOKENS: 3,
        }).end(end_time=T0 + i * SEC + 1000)
    provider.shutdown()
    return list(collect.spans)


def _big(service: str) -> Resource:
    return Resource.create({"service.name": service, "deployment.environment.name": "prod",
                            "host.name": "worker-17.eu-west-1.internal", "service.instance.id": f"{service}-instance"})


def _post(srv: RunningServer, spans: list[ReadableSpan]) -> httpx.Response:
    return httpx.post(srv.otlp_endpoint, content=encode_spans(spans).SerializeToString(),
                      headers={**srv.headers, **_PB}, timeout=30)


def _stored_column(srv: RunningServer, tenant: str) -> set[str]:
    assert srv.store is not None
    rows = srv.store.query("SELECT DISTINCT resource_attributes AS r FROM netra_spans FINAL "
                           "WHERE project_id = {p:String} AND tenant_id = {t:String}", {"p": srv.project_id, "t": tenant})
    return {str(r["r"]) for r in rows}


def _read_resources(srv: RunningServer, spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """The resource attributes of ``spans`` as the store's read of their traces shows them."""
    assert srv.store is not None
    out = []
    for trace in sorted({format(s.get_span_context().trace_id, "032x") for s in spans}):
        rows, _ = srv.store.trace_spans(srv.project_id, trace)
        out += [json.loads(r.resource_attributes) for r in rows]
    return out


def _resource_rows(srv: RunningServer) -> int:
    assert srv.store is not None
    return int(srv.store.query("SELECT count() AS n FROM netra_resources FINAL WHERE project_id = {p:String}",
                               {"p": srv.project_id})[0]["n"])


def test_each_resource_is_stored_once_and_read_back_as_sent(srv: RunningServer) -> None:
    before = _resource_rows(srv)
    a, b = _big("checkout"), _big("search")
    spans_a, spans_b = _spans(a, "res-a", 6), _spans(b, "res-a", 4, first=10)
    for batch in (spans_a[:3], spans_a[3:] + spans_b, spans_b):  # the same resources in several requests
        assert _post(srv, batch).status_code == 200
    column = _stored_column(srv, "res-a")
    assert len(column) == 2 and all(v.startswith(PREFIX) for v in column), column  # rows name their resource
    assert _resource_rows(srv) == before + 2
    assert _read_resources(srv, spans_a) == [dict(a.attributes)] * 6
    assert _read_resources(srv, spans_b) == [dict(b.attributes)] * 4
    trace = format(spans_b[0].get_span_context().trace_id, "032x")
    with srv.client() as c:  # as a user reads them: the Netra-compatible spans route
        got = c.get(f"/sdk/traces/{trace}/spans").raise_for_status().json()["data"]["data"]
    assert [json.loads(x["resources"]) for x in got] == [dict(b.attributes)]


def test_a_short_resource_stays_in_the_row(srv: RunningServer) -> None:
    short = Resource({"service.name": "s"})  # no SDK attributes: a few bytes
    spans = _spans(short, "res-short", 2)
    assert _post(srv, spans).status_code == 200
    assert _stored_column(srv, "res-short") == {'{"service.name":"s"}'}
    assert _read_resources(srv, spans) == [{"service.name": "s"}] * 2


def test_rows_written_before_resources_were_stored_apart_read_as_they_are(srv: RunningServer) -> None:
    """A row with the resource inline (every row before ``core-0008``, a journal left by an older
    server) is read as stored."""
    assert srv.store is not None
    res = _big("legacy")
    batch = build_rows(encode_spans(_spans(res, "res-old", 2, first=40)), srv.project_id, Limits(), T0 // 1_000_000)
    (key, attrs), = batch.resources.items()
    inline = batch.data.replace(orjson.dumps(PREFIX + key[1]), attrs)  # as the row was written before
    assert PREFIX.encode() not in inline
    srv.store.insert_spans(inline)
    assert _stored_column(srv, "res-old") == {attrs.decode()}
    trace = orjson.loads(inline.split(b"\n")[0])[schema.SPAN_COLUMNS.index("trace_id")]
    rows, _ = srv.store.trace_spans(srv.project_id, trace)
    assert [json.loads(r.resource_attributes) for r in rows] == [dict(res.attributes)]


def test_a_project_never_reads_another_projects_resource(srv: RunningServer) -> None:
    """A row of project q naming a resource stored for project p (the same id) does not show p's
    attributes: resources are looked up within the project."""
    assert srv.store is not None
    secret = _big("payroll-secret")
    spans = _spans(secret, "res-p", 1, first=60)
    assert _post(srv, spans).status_code == 200
    p_batch = build_rows(encode_spans(spans), srv.project_id, Limits(), T0 // 1_000_000)
    (_, resource_id), = p_batch.resources
    q_batch = build_rows(encode_spans(_spans(secret, "res-q", 1, first=61)), "prj_other", Limits(), T0 // 1_000_000)
    assert set(q_batch.resources) == {("prj_other", resource_id)}  # the same id, another project
    srv.store.insert_spans(q_batch.data)  # its resource never stored: a row that names nothing
    trace = orjson.loads(q_batch.data.split(b"\n")[0])[schema.SPAN_COLUMNS.index("trace_id")]
    rows, _ = srv.store.trace_spans("prj_other", trace)
    assert [r.resource_attributes for r in rows] == ["{}"]


def test_a_resource_the_store_cannot_write_leaves_its_spans_unacknowledged(srv: RunningServer) -> None:
    """The resource INSERT fails (its table detached): the request is answered 503 and nothing of it is
    kept; the exporter's retry, once the table is back, stores the spans and their resource."""
    assert srv.store is not None
    spans = _spans(_big("flaky"), "res-fail", 3, first=80)
    srv.store.command("DETACH TABLE netra_resources")
    try:
        r = _post(srv, spans)
        assert r.status_code == 503 and r.headers.get("retry-after"), r.text
        assert _post(srv, spans).status_code == 503  # not answered from the digests of acknowledged bodies
    finally:
        srv.store.command("ATTACH TABLE netra_resources")
    assert _stored_column(srv, "res-fail") == set()
    assert _post(srv, spans).status_code == 200
    assert _read_resources(srv, spans) == [dict(_big("flaky").attributes)] * 3


def test_remembered_resources_are_bounded(srv: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store remembers at most ``KNOWN_RESOURCES`` stored resources; one forgotten is stored again
    and still reads as one resource."""
    assert srv.store is not None
    monkeypatch.setattr(core, "KNOWN_RESOURCES", 2)
    backend = srv.store.backend
    writes: list[int] = []
    real_insert = backend.insert_rows

    def counted(table: str, *args: Any, **kwargs: Any) -> None:  # the real INSERT, counted
        if table == "netra_resources":
            writes.append(1)
        real_insert(table, *args, **kwargs)

    monkeypatch.setattr(backend, "insert_rows", counted)
    before = _resource_rows(srv)
    names = ["bound-1", "bound-2", "bound-1", "bound-3", "bound-1", "bound-2"]
    for i, name in enumerate(names):
        assert _post(srv, _spans(_big(name), "res-bound", 1, first=100 + i)).status_code == 200
        assert len(srv.store._known_resources) <= 2
    # bound-1 is used again before bound-3 comes, so bound-2 is the one forgotten, and stored again
    assert len(writes) == 4
    assert _resource_rows(srv) == before + 3


def test_a_resource_per_request_from_concurrent_exporters(srv: RunningServer) -> None:
    """Exporters whose resource differs in every request (an instance id per process, many processes),
    sending at once: each request's resource is stored (requests of one group commit share an INSERT)
    and each span reads back with its own."""
    from concurrent.futures import ThreadPoolExecutor

    before = _resource_rows(srv)
    batches = [_spans(_big(f"burst-{i}"), "res-burst", 2, first=200 + 2 * i) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda b: _post(srv, b).status_code, batches))
    assert codes == [200] * 40
    assert _resource_rows(srv) == before + 40
    for i in (0, 17, 39):
        assert _read_resources(srv, batches[i]) == [dict(_big(f"burst-{i}").attributes)] * 2
