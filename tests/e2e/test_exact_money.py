"""Money is exact from the store to the client: totals that need more than 15 significant digits.

400 LLM spans, each with a cost of ten decimal places (the store's scale) just under $100,000, are
exported with the real OpenTelemetry SDK and OTLP exporter to a real ``netra serve``. Their sum has
18 significant digits: a float (about 15) cannot hold it, and adding the costs up as floats drifts.
Every route that answers money must give the exact decimal sum, on the wire (the JSON number's digits)
and through the usage client (``Decimal``), sync and async.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from netra_server.responses import decimal_text
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from netra import semconv
from netra.usage import AsyncUsageClient, UsageClient

TENANT = "whale-corp"
SESSIONS = ("big-session-a", "big-session-b")
TRACES = 40
CALLS_PER_TRACE = 10


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000).isoformat().replace(
        "+00:00", "Z"
    )


def cost_of(i: int) -> Decimal:
    """A cost on the 0.0000000001 grid with 15 significant digits (what a double attribute carries
    exactly), its last digits spread (so sums do not end in zeros)."""
    fraction = int(hashlib.sha256(str(i).encode()).hexdigest(), 16) % 10**10
    return Decimal(f"{98_765 + i}.{fraction:010d}")


@dataclass
class Sent:
    window: tuple[str, str]
    total: Decimal
    by_session: dict[str, Decimal]
    by_trace: dict[str, Decimal]
    by_span: dict[str, Decimal]


def _export(srv: RunningServer) -> Sent:
    provider = TracerProvider(resource=Resource.create({"service.name": "exact-money"}))
    exporter = OTLPSpanExporter(endpoint=srv.otlp_endpoint, headers=srv.headers, timeout=30)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256, schedule_delay_millis=50))
    tracer = provider.get_tracer("exact-money")
    base = time.time_ns() // 1000 * 1000 - 3600 * 10**9
    by_session = dict.fromkeys(SESSIONS, Decimal(0))
    by_trace: dict[str, Decimal] = {}
    by_span: dict[str, Decimal] = {}
    n = 0
    for t in range(TRACES):
        session = SESSIONS[t % 2]
        attrs = {semconv.TENANT_ID: TENANT, semconv.SESSION_ID: session, semconv.USER_ID: "moby"}
        start = base + t * 10_000_000
        root = tracer.start_span("bill-run", kind=SpanKind.SERVER, attributes=attrs, start_time=start)
        trace_id = format(root.get_span_context().trace_id, "032x")
        by_trace[trace_id] = Decimal(0)
        for k in range(CALLS_PER_TRACE):
            cost = cost_of(n)
            n += 1
            assert Decimal(repr(float(cost))) == cost  # the attribute (a double) carries it exactly
            llm = tracer.start_span(
                "chat gpt-4o", context=set_span_in_context(root), kind=SpanKind.CLIENT, start_time=start + 1000 * (k + 1),
                attributes={**attrs, semconv.SPAN_TYPE: "generation", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
                            semconv.GEN_AI_USAGE_INPUT_TOKENS: 10, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
                            semconv.COST: float(cost), semconv.COST_SOURCE: semconv.COST_SOURCE_PROVIDER},
            )
            llm.end(end_time=start + 1000 * (k + 1) + 500)
            by_span[format(llm.get_span_context().span_id, "016x")] = cost
            by_trace[trace_id] += cost
            by_session[session] += cost
        root.end(end_time=start + 1_000_000)
    assert provider.force_flush(60_000)
    provider.shutdown()
    srv.wait_for_spans(TRACES * (CALLS_PER_TRACE + 1), timeout=60)
    return Sent(
        window=(iso(base - 10**9), iso(base + TRACES * 10_000_000 + 10**9)),
        total=sum(by_span.values(), Decimal(0)),
        by_session=by_session,
        by_trace=by_trace,
        by_span=by_span,
    )


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("exact-money"), subprocess=True) as server:
        yield server


@pytest.fixture(scope="module")
def sent(srv: RunningServer) -> Sent:
    return _export(srv)


def test_the_totals_are_beyond_a_float(sent: Sent) -> None:
    digits = len(sent.total.normalize().as_tuple().digits)
    assert digits == 18, digits
    assert Decimal(float(sent.total)) != sent.total  # a float cannot carry the total
    assert Decimal(repr(sum(float(c) for c in sent.by_span.values()))) != sent.total  # nor add it up


def test_the_wire_has_the_exact_digits(srv: RunningServer, sent: Sent) -> None:
    start, end = sent.window
    with srv.client() as http:
        tenant = http.get(f"/usage/tenants/{TENANT}", params={"startTime": start, "endTime": end})
        summary = http.get("/api/usage/summary", params={"groupBy": "session", "startTime": start, "endTime": end})
    assert tenant.status_code == 200 and summary.status_code == 200
    assert tenant.headers["content-type"] == "application/json"
    assert f'"totalCost":{decimal_text(sent.total)}' in tenant.text  # a JSON number, every digit
    for session, cost in sent.by_session.items():
        assert f'"key":"{session}"' in summary.text and f'"totalCost":{decimal_text(cost)}' in summary.text


def test_the_client_gets_the_exact_sums(srv: RunningServer, sent: Sent) -> None:
    start, end = sent.window
    with UsageClient(srv.base_url, srv.api_key) as usage:
        tenant = usage.get_tenant_usage(TENANT, start, end)
        assert tenant is not None and type(tenant.total_cost_usd) is Decimal
        assert tenant.total_cost_usd == sent.total and tenant.total_cost == float(sent.total)
        assert tenant.request_count == len(sent.by_span) and type(tenant.token_count) is int
        for session, cost in sent.by_session.items():
            got = usage.get_session_usage(session, start, end)
            assert got is not None and got.total_cost_usd == cost

        summary = usage.get_usage_summary(start, end, group_by="session")
        assert {g.key: g.total_cost for g in summary.groups} == sent.by_session
        assert summary.total.total_cost == sent.total
        assert sum((g.total_cost for g in summary.groups), Decimal(0)) == sent.total

        traces = list(usage.iter_traces(start, end, tenant_id=TENANT, limit=7))
        assert {t.id: t.total_cost_usd for t in traces} == sent.by_trace
        assert sum((t.total_cost_usd or Decimal(0) for t in traces), Decimal(0)) == sent.total
        by_cost = usage.list_traces(start, end, tenant_id=TENANT, sort_field="cost", sort_order="desc", limit=3)
        assert [t.total_cost_usd for t in by_cost.traces] == sorted(sent.by_trace.values(), reverse=True)[:3]

        spans: dict[str, Decimal | None] = {}
        for trace_id in sent.by_trace:
            spans.update({s.id: s.total_cost_usd for s in usage.iter_spans_by_trace_id(trace_id, limit=4)})
            tu = usage.get_trace_usage(trace_id)
            assert tu is not None and tu.total.total_cost == sent.by_trace[trace_id]
            root = next(s for s in tu.spans if s.parent_span_id is None)
            assert root.rollup.total_cost == sent.by_trace[trace_id]
            assert all(s.own.cost == sent.by_span[s.span_id] for s in tu.spans if s.span_id in sent.by_span)
        assert {k: v for k, v in spans.items() if k in sent.by_span} == sent.by_span
        assert all(v is None for k, v in spans.items() if k not in sent.by_span)  # roots: no cost, not 0


async def test_the_async_client_gets_the_exact_sums(srv: RunningServer, sent: Sent) -> None:
    start, end = sent.window
    async with AsyncUsageClient(srv.base_url, srv.api_key) as usage:
        tenant = await usage.get_tenant_usage(TENANT, start, end)
        assert tenant is not None and tenant.total_cost_usd == sent.total
        total = Decimal(0)
        async for trace in usage.iter_traces(start, end, tenant_id=TENANT, limit=16):
            total += trace.total_cost_usd or 0
        assert total == sent.total
        summary = await usage.get_usage_summary(start, end, group_by="tenant")
        assert summary.total.total_cost == sent.total
