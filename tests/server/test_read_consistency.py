"""Read consistency with the ingest journal: bounded reads (the server's default) answer from what is
inserted and say how fresh that is (``data_as_of``); ``consistency=strong`` / ``X-Netra-Consistency:
strong`` reads see every span acknowledged before them; staleness never exceeds ``max_read_staleness``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from netra_server.config import Settings
from netra_server.testing import RunningServer, run_server
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv

from ._helpers import SEC, T0, record, send


def _spans(tenant: str, n: int) -> list:  # type: ignore[type-arg]
    provider, collect = record()
    tr = provider.get_tracer("t")
    for i in range(n):
        s = tr.start_span("chat", start_time=T0 + i * SEC, attributes={
            semconv.TENANT_ID: tenant, semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o", semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 2, semconv.COST: 0.001})
        s.end(end_time=T0 + i * SEC + 1000)
    provider.shutdown()
    return collect.spans


def _as_of(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def slow_flush(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server's own default (bounded reads) with a journal that inserts only every 30 s: what was
    acknowledged stays in the journal until a strong read (or the staleness bound) inserts it."""
    with run_server(tmp_path_factory.mktemp("consistency"), read_consistency="bounded",
                    journal_flush_seconds=30.0, max_read_staleness=3600.0, subprocess=True) as srv:
        yield srv


def test_a_bounded_read_answers_from_what_is_inserted_and_says_how_fresh_it_is(slow_flush: RunningServer) -> None:
    with slow_flush.client() as c:
        before = c.get("/usage/tenants/fresh-a")
        assert before.status_code == 200
        assert before.json()["data"]["requestsCount"] == 0
        assert send(slow_flush, _spans("fresh-a", 3)) is SpanExportResult.SUCCESS
        acked = time.time()  # the spans were acknowledged before this
        r = c.get("/usage/tenants/fresh-a")
        assert r.status_code == 200, r.text
        body = r.json()["data"]
        # not inserted yet (the journal holds them): the answer says its data predates them
        assert body["requestsCount"] == 0
        assert _as_of(r.headers["x-netra-data-as-of"]) < time.time()
        assert r.headers["x-netra-consistency"] == "bounded"
        # ... and it does not claim a time after their acknowledgement (at most the moment they were
        # appended to an empty journal: everything before that was inserted)
        assert _as_of(r.headers["x-netra-data-as-of"]) <= acked + 0.001
        # the netra-sdk-compatible keys are all still there
        assert {"tenant_id", "organisation_id", "tokenCount", "requestsCount", "sessionsCount", "totalCost"} <= set(body)


@pytest.mark.parametrize("how", ["param", "header"])
def test_a_strong_read_sees_every_span_acknowledged_before_it(slow_flush: RunningServer, how: str) -> None:
    tenant = f"strong-{how}"
    assert send(slow_flush, _spans(tenant, 4)) is SpanExportResult.SUCCESS
    acked = time.time()
    with slow_flush.client() as c:
        if how == "param":
            r = c.get(f"/usage/tenants/{tenant}", params={"consistency": "strong"})
        else:
            r = c.get(f"/usage/tenants/{tenant}", headers={"X-Netra-Consistency": "Strong"})
        assert r.status_code == 200, r.text
        body = r.json()["data"]
        assert body["requestsCount"] == 4 and body["tokenCount"] == 48
        assert r.headers["x-netra-consistency"] == "strong"
        assert _as_of(r.headers["x-netra-data-as-of"]) >= acked - 0.001
        # after the strong read inserted them, a bounded read sees them too, and says so
        again = c.get(f"/usage/tenants/{tenant}")
        assert again.json()["data"]["requestsCount"] == 4
        assert _as_of(again.headers["x-netra-data-as-of"]) >= acked - 0.001


def test_the_staleness_bound_makes_a_bounded_read_wait(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A bounded read never answers from data older than max_read_staleness: past it, it waits for the journal."""
    with run_server(tmp_path_factory.mktemp("stale-bound"), read_consistency="bounded", journal_flush_seconds=30.0,
                    max_read_staleness=0.5, subprocess=True) as srv:
        assert send(srv, _spans("bounded", 2)) is SpanExportResult.SUCCESS
        time.sleep(0.7)  # the acknowledged spans are now older than the bound, still in the journal
        with srv.client() as c:
            r = c.get("/usage/tenants/bounded")
        assert r.status_code == 200
        assert r.json()["data"]["requestsCount"] == 2
        assert time.time() - _as_of(r.headers["x-netra-data-as-of"]) < 30


@pytest.mark.parametrize("bad", ["eventual", "", "STRONG!", "strong\u00e9"])
def test_an_unknown_consistency_is_400_with_a_message(slow_flush: RunningServer, bad: str) -> None:
    with slow_flush.client() as c:
        r = c.get("/usage/tenants/x", params={"consistency": bad})
        assert r.status_code == 400
        assert "consistency must be" in r.json()["error"]["message"]
        r = c.get("/api/usage/summary", headers={"X-Netra-Consistency": bad.encode("utf-8")})
        assert r.status_code == 400


def test_summary_and_listing_follow_the_choice(slow_flush: RunningServer) -> None:
    assert send(slow_flush, _spans("listing", 2)) is SpanExportResult.SUCCESS
    with slow_flush.client() as c:
        bounded = c.post("/sdk/traces", json={"filters": [
            {"field": "tenant_id", "operator": "equals", "type": "string", "value": "listing"}]})
        assert bounded.status_code == 200 and bounded.headers["x-netra-consistency"] == "bounded"
        assert bounded.json()["data"]["data"] == []
        strong = c.post("/sdk/traces", params={"consistency": "strong"}, json={"filters": [
            {"field": "tenant_id", "operator": "equals", "type": "string", "value": "listing"}]})
        assert len(strong.json()["data"]["data"]) == 2
        summary = c.get("/api/usage/summary", params={"groupBy": "tenant"})
        assert "x-netra-data-as-of" in summary.headers


def test_the_server_default_and_the_test_servers() -> None:
    assert Settings().read_consistency == "bounded"  # `netra serve`'s default
    with pytest.raises(ValueError, match="read_consistency"):
        Settings(read_consistency="eventual")
    with pytest.raises(ValueError, match="max_read_staleness"):
        Settings(max_read_staleness=float("nan"))


def test_run_server_reads_are_strong_by_default(netra_server: RunningServer) -> None:
    """Tests read what they just sent: run_server asks for read-your-writes."""
    assert send(netra_server, _spans("ryw", 3)) is SpanExportResult.SUCCESS
    r = httpx.get(netra_server.base_url + "/usage/tenants/ryw", headers=netra_server.headers)
    assert r.json()["data"]["requestsCount"] == 3 and r.headers["x-netra-consistency"] == "strong"


def test_the_sdk_usage_client_reads_its_own_writes_and_can_opt_into_bounded_reads(slow_flush: RunningServer) -> None:
    """`Netra.usage` bills: it asks for strong reads by default, so every span acknowledged before the call
    counts even while the server's default for other readers is bounded staleness."""
    from netra.usage import UsageClient

    assert send(slow_flush, _spans("sdk-reader", 4)) is SpanExportResult.SUCCESS
    with UsageClient(slow_flush.base_url, slow_flush.api_key, headers={"x-netra-consistency": "bounded"}) as bounded:
        usage = bounded.get_tenant_usage("sdk-reader", start_time="2000-01-01T00:00:00Z", end_time="2200-01-01T00:00:00Z")
        assert usage is not None and usage.request_count == 0  # still in the journal: a bounded read misses it
    with UsageClient(slow_flush.base_url, slow_flush.api_key) as strong:
        usage = strong.get_tenant_usage("sdk-reader", start_time="2000-01-01T00:00:00Z", end_time="2200-01-01T00:00:00Z")
        assert usage is not None and usage.request_count == 4
