"""Receiver limits (413/400 with a message) and overload (429 + Retry-After, accepted data kept)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator

import httpx
import pytest
from netra_server.config import Limits
from netra_server.testing import RunningServer, run_server
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._helpers import T0

LIMITS = Limits(max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024, max_spans_per_request=100,
                max_attribute_bytes=1000, max_pending_spans=50)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("limits"), limits=LIMITS) as srv:
        yield srv


def _request(n: int, *, attr: str = "v", first: int = 1) -> bytes:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(first, first + n):
        s = spans.add(trace_id=i.to_bytes(16, "big"), span_id=i.to_bytes(8, "big"), name=f"s{i}",
                      start_time_unix_nano=T0 + i, end_time_unix_nano=T0 + i + 1000)
        kv = s.attributes.add(key="big")
        kv.value.string_value = attr
    return req.SerializeToString()


def _post(srv: RunningServer, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(srv.otlp_endpoint, content=body, timeout=30,
                      headers={**srv.headers, "content-type": "application/x-protobuf", **headers})


def _message(r: httpx.Response) -> str:
    from google.rpc import status_pb2

    return status_pb2.Status.FromString(r.content).message


def test_body_over_the_limit_is_413(small: RunningServer) -> None:
    r = _post(small, b"\0" * (64 * 1024 + 1))
    assert r.status_code == 413 and "limit" in _message(r)


def test_decompressed_body_over_the_limit_is_413(small: RunningServer) -> None:
    bomb = gzip.compress(b"\0" * (1024 * 1024))
    assert len(bomb) < 64 * 1024
    r = _post(small, bomb, **{"content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in _message(r)


def test_too_many_spans_is_413(small: RunningServer) -> None:
    r = _post(small, _request(101))
    assert r.status_code == 413 and "101 spans" in _message(r)
    assert _post(small, _request(100, first=1000)).status_code == 200


def test_attribute_over_the_limit_is_400_naming_it(small: RunningServer) -> None:
    r = _post(small, _request(1, attr="x" * 1001, first=5000))
    assert r.status_code == 400
    assert "'big'" in _message(r) and "1001 bytes" in _message(r)
    r = httpx.post(small.otlp_endpoint, json={"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "11" * 16, "spanId": "22" * 8, "name": "j", "startTimeUnixNano": str(T0),
        "attributes": [{"key": "big", "value": {"stringValue": "y" * 2000}}]}]}]}]}, headers=small.headers)
    assert r.status_code == 400 and "'big'" in r.json()["error"]["message"]


def _array_request(items: list[str], first: int) -> bytes:
    req = ExportTraceServiceRequest()
    s = req.resource_spans.add().scope_spans.add().spans.add(
        trace_id=first.to_bytes(16, "big"), span_id=first.to_bytes(8, "big"), name=f"a{first}",
        start_time_unix_nano=T0 + first, end_time_unix_nano=T0 + first + 1000)
    kv = s.attributes.add(key="list")
    for item in items:
        kv.value.array_value.values.add().string_value = item
    return req.SerializeToString()


def test_array_attribute_is_measured_as_its_json(small: RunningServer) -> None:
    """An array value counts as its JSON text: 1000 bytes is the limit here."""
    assert small.store is not None
    small.store.flush_ingest()  # earlier tests' spans leave the journal: under max_pending_spans (50) again
    assert _post(small, _array_request(["x" * 300] * 3, first=6000)).status_code == 200  # 910 bytes
    r = _post(small, _array_request(["x" * 300] * 4, first=6001))  # 1213 bytes
    assert r.status_code == 400 and "'list'" in _message(r) and "1213 bytes" in _message(r)
    # 200 control characters are 200 bytes of UTF-8 but 1,204 bytes of JSON (each one \u00XX)
    r = _post(small, _array_request(["\x01" * 200], first=6002))
    assert r.status_code == 400 and "1204 bytes" in _message(r)


def test_overload_is_429_with_retry_after_and_accepted_data_is_kept(small: RunningServer) -> None:
    state = small.app.state.netra
    assert small.store is not None
    small.store.flush_ingest()  # what earlier tests sent is in the store, not in the ingest journal
    assert state.committer.pending_spans == 0
    release = threading.Event()
    # occupy the writer thread: the next group commit waits behind it, its spans stay pending
    blocker = state.committer._writer.submit(release.wait, 30)
    first: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: first.setdefault("r", _post(small, _request(40, first=10_000))))
    t.start()
    try:
        deadline = 0
        while state.committer.pending_spans < 40 and deadline < 1000:
            threading.Event().wait(0.01)
            deadline += 1
        assert state.committer.pending_spans == 40
        r = _post(small, _request(20, first=20_000))
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1" and "retry" in _message(r)
    finally:
        release.set()
        blocker.result(timeout=30)
        t.join(timeout=30)
    assert first["r"].status_code == 200
    assert small.store is not None
    n = small.store.query("SELECT count() AS n FROM netra_spans FINAL WHERE name LIKE 's1____'")[0]["n"]
    assert n == 40
    assert _post(small, _request(20, first=20_000)).status_code == 200  # the retry succeeds

