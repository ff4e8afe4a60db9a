"""The server keeps the daily rollups current by itself: once a day has settled, its rollup is used,
and the figures are the ones read from the spans."""

from __future__ import annotations

import time
from pathlib import Path

from netra_server.store import Store, Window
from netra_server.testing import run_server
from opentelemetry.sdk.trace.export import SpanExportResult

from netra import semconv

from ._helpers import SEC, T0, record, send


def test_the_server_rolls_up_settled_days_in_the_background(tmp_path: Path) -> None:
    with run_server(tmp_path, rollup_interval=0.2, rollup_settle_seconds=0) as srv:
        store = srv.store
        assert isinstance(store, Store)
        provider, collect = record()
        tr = provider.get_tracer("t")
        for day in range(3):
            s = tr.start_span("chat", start_time=T0 + day * 86_400 * SEC + 5 * SEC, attributes={
                semconv.TENANT_ID: "apex", semconv.GEN_AI_RESPONSE_MODEL: "netra-test-model",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 10 + day, semconv.COST: "0.5"})
            s.end(end_time=T0 + day * 86_400 * SEC + 6 * SEC)
        provider.shutdown()
        assert send(srv, collect.spans) is SpanExportResult.SUCCESS
        send(srv, collect.spans[:1])  # a duplicate in another insert
        whole = Window(T0, T0 + 3 * 86_400 * SEC - 1)
        deadline = time.monotonic() + 60
        while len(store._plan(whole).days) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(store._plan(whole).days) == 3
        with srv.client() as c:
            d = c.get("/usage/tenants/apex", params={"startTime": "2026-01-01", "endTime": "2026-01-03T23:59:59.999999999Z"})
        assert d.json()["data"]["requestsCount"] == 3 and d.json()["data"]["tokenCount"] == 33
        assert d.json()["data"]["totalCost"] == 1.5
