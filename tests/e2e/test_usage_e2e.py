"""SDK → server → report: spans exported over OTLP to a real ``netra serve`` (chDB in a temporary
folder), read back with the usage client.

The bulk data (hundreds of traces, a deep trace) goes through the real OpenTelemetry SDK and OTLP/HTTP
exporter with explicit start times, so the expected totals and orders are known exactly. The billing
rule goes through ``Netra.init`` + ``Netra.start_span`` + ``set_usage`` around a real ``openai`` client
call, auto-instrumented, against the local OpenAI-compatible endpoint (only the model is simulated).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from netra_server.testing import RunningServer, run_server
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from netra import semconv
from netra.usage import (
    AsyncUsageClient,
    AuthenticationError,
    BadRequestError,
    PermissionDeniedError,
    UsageClient,
)

TENANTS = ("apex-legal", "stratex-consulting", "techstart-inc")
USERS = ("alice", "bob", "carol", "dave")
MODELS = ("gpt-4o-mini", "gpt-4o")
N_TRACES = 240
DEEP_LEVELS = 60
DOCS = Path(__file__).resolve().parents[2] / "docs" / "usage-api.md"


def iso(ns: int) -> str:
    """Exact for microsecond-aligned times (the client, like ``datetime``, has microseconds)."""
    assert ns % 1000 == 0
    return datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000).isoformat().replace("+00:00", "Z")


@dataclass
class Totals:
    tokens: int = 0
    requests: int = 0
    cost: Decimal = Decimal(0)
    sessions: set[str] = field(default_factory=set)


@dataclass
class Dataset:
    base_ns: int
    end_ns: int
    trace_ids: list[str]  # in start-time order
    tenant_of: dict[str, str]
    by_tenant: dict[str, Totals]
    by_session: dict[str, Totals]
    deep_trace_id: str
    deep_spans: dict[str, str | None]  # span id -> parent span id
    deep_cost: Decimal
    deep_tokens: int
    deep_window: tuple[str, str]

    @property
    def window(self) -> tuple[str, str]:
        return iso(self.base_ns), iso(self.end_ns)


def _context_attrs(tenant: str, session: str, user: str) -> dict[str, str]:
    return {semconv.TENANT_ID: tenant, semconv.SESSION_ID: session, semconv.USER_ID: user}


def _export(srv: RunningServer) -> Dataset:
    provider = TracerProvider(resource=Resource.create({"service.name": "usage-e2e"}))
    exporter = OTLPSpanExporter(endpoint=srv.otlp_endpoint, headers=srv.headers, timeout=30)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256, schedule_delay_millis=50))
    tracer = provider.get_tracer("usage-e2e")

    base_ns = time.time_ns() // 1000 * 1000 - 2 * 3600 * 10**9
    trace_ids: list[str] = []
    tenant_of: dict[str, str] = {}
    by_tenant: dict[str, Totals] = defaultdict(Totals)
    by_session: dict[str, Totals] = defaultdict(Totals)
    span_total = 0
    for i in range(N_TRACES):
        k = i % 60
        session = f"meeting-{k}"
        tenant = TENANTS[k % 3]
        user = USERS[i % 4]
        model = MODELS[i % 2]
        start = base_ns + i * 1_000_000
        attrs = _context_attrs(tenant, session, user)
        root = tracer.start_span("handle-request", kind=SpanKind.SERVER, attributes=attrs, start_time=start)
        input_tokens, output_tokens = 100 + i, 20 + i % 17
        cost = Decimal(input_tokens) * Decimal("0.0000025") + Decimal(output_tokens) * Decimal("0.00001")
        llm = tracer.start_span(
            f"chat {model}",
            context=set_span_in_context(root),
            kind=SpanKind.CLIENT,
            start_time=start + 100_000,
            attributes={
                **attrs,
                semconv.SPAN_TYPE: "generation",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_REQUEST_MODEL: model,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                semconv.COST: float(cost),
                semconv.COST_SOURCE: semconv.COST_SOURCE_PROVIDER,
            },
        )
        llm.end(end_time=start + 400_000)
        root.end(end_time=start + 500_000)
        span_total += 2
        trace_id = format(root.get_span_context().trace_id, "032x")
        trace_ids.append(trace_id)
        tenant_of[trace_id] = tenant
        for totals in (by_tenant[tenant], by_session[session]):
            totals.tokens += input_tokens + output_tokens
            totals.requests += 1
            totals.cost += cost
            totals.sessions.add(session)

    # A deep trace, ten minutes before the bulk: a chain of DEEP_LEVELS spans, each with a leaf child
    # that recorded usage (leaves only, so nothing is covered and every leaf counts).
    deep_start = base_ns - 600 * 10**9
    deep_spans: dict[str, str | None] = {}
    deep_cost, deep_tokens = Decimal(0), 0
    attrs = _context_attrs("deep-tenant", "deep-session", "erin")
    parent = None
    chain = []
    for level in range(DEEP_LEVELS):
        ctx = set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(f"level-{level}", context=ctx, attributes=attrs, start_time=deep_start + level * 2000)
        chain.append(span)
        leaf_cost = Decimal(level + 1) * Decimal("0.0000001")
        leaf = tracer.start_span(
            f"tool-{level}",
            context=set_span_in_context(span),
            start_time=deep_start + level * 2000 + 1000,
            attributes={
                **attrs,
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: level + 1,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
                semconv.COST: float(leaf_cost),
            },
        )
        leaf.end(end_time=deep_start + level * 2000 + 1500)
        deep_cost += leaf_cost
        deep_tokens += level + 2
        span_id = format(span.get_span_context().span_id, "016x")
        deep_spans[span_id] = format(parent.get_span_context().span_id, "016x") if parent is not None else None
        deep_spans[format(leaf.get_span_context().span_id, "016x")] = span_id
        parent = span
    for level, span in reversed(list(enumerate(chain))):
        span.end(end_time=deep_start + 10_000_000 - level)
    span_total += 2 * DEEP_LEVELS
    deep_trace_id = format(chain[0].get_span_context().trace_id, "032x")

    assert provider.force_flush(60_000)
    provider.shutdown()
    srv.wait_for_spans(span_total, timeout=60)
    return Dataset(
        base_ns=base_ns,
        end_ns=base_ns + N_TRACES * 1_000_000,
        trace_ids=trace_ids,
        tenant_of=tenant_of,
        by_tenant=dict(by_tenant),
        by_session=dict(by_session),
        deep_trace_id=deep_trace_id,
        deep_spans=deep_spans,
        deep_cost=deep_cost,
        deep_tokens=deep_tokens,
        deep_window=(iso(deep_start - 10**9), iso(deep_start + 10**10)),
    )


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A server process of its own, as in production: in-process, FastAPI's built-in telemetry would
    # trace the server's own requests with the global provider that Netra.init sets up.
    with run_server(tmp_path_factory.mktemp("usage-e2e"), subprocess=True) as server:
        yield server


@pytest.fixture(scope="module")
def data(srv: RunningServer) -> Dataset:
    return _export(srv)


@pytest.fixture
def usage(srv: RunningServer) -> Iterator[UsageClient]:
    with UsageClient(srv.base_url, srv.api_key) as client:
        yield client


# ------------------------------------------------------------------------------------------------
# Totals


def test_tenant_totals_are_exact(usage: UsageClient, data: Dataset) -> None:
    start, end = data.window
    for tenant, expected in data.by_tenant.items():
        got = usage.get_tenant_usage(tenant, start, end)
        assert got is not None
        assert got.tenant_id == tenant
        assert got.token_count == expected.tokens
        assert got.request_count == expected.requests
        assert got.session_count == len(expected.sessions)
        assert got.total_cost_usd == expected.cost


def test_session_totals_are_exact(usage: UsageClient, data: Dataset) -> None:
    start, end = data.window
    assert len(data.by_session) == 60
    for session, expected in data.by_session.items():
        got = usage.get_session_usage(session, start, end)
        assert got is not None
        assert (got.session_id, got.token_count, got.request_count) == (session, expected.tokens, expected.requests)
        assert got.total_cost_usd == expected.cost


def test_window_bounds_are_inclusive_and_empty_windows_are_zero(usage: UsageClient, data: Dataset) -> None:
    # Only the first trace's LLM span, which starts 100 µs after its root: a span belongs to the
    # window its start is in, and both ends are included.
    at = iso(data.base_ns + 100_000)
    first = usage.get_tenant_usage(TENANTS[0], at, at)
    assert first is not None and first.request_count == 1 and first.token_count == 100 + 20
    nobody = usage.get_tenant_usage("no-such-tenant", *data.window)
    assert nobody is not None
    assert (nobody.token_count, nobody.request_count, nobody.session_count, nobody.total_cost_usd) == (0, 0, 0, Decimal(0))
    later = datetime.now(UTC) + timedelta(days=1)
    empty = usage.get_session_usage("meeting-0", later, later + timedelta(hours=1))
    assert empty is not None and empty.request_count == 0 and empty.total_cost_usd == Decimal(0)


def test_summary_matches_the_per_tenant_reads(usage: UsageClient, data: Dataset) -> None:
    summary = usage.get_usage_summary(*data.window, group_by="tenant")
    got = {g.key: (g.token_count, g.request_count, g.total_cost) for g in summary.groups}
    assert got == {t: (e.tokens, e.requests, e.cost) for t, e in data.by_tenant.items()}
    assert summary.total.request_count == N_TRACES
    assert summary.total.session_count == 60
    by_model = usage.get_usage_summary(*data.window, group_by="model")
    assert {g.key for g in by_model.groups} == set(MODELS)
    assert sum(g.request_count for g in by_model.groups) == N_TRACES


async def test_async_client_reads_the_same(srv: RunningServer, data: Dataset) -> None:
    async with AsyncUsageClient(srv.base_url, srv.api_key) as usage:
        tenant = await usage.get_tenant_usage(TENANTS[1], *data.window)
        assert tenant is not None and tenant.total_cost_usd == data.by_tenant[TENANTS[1]].cost
        ids = [t.id async for t in usage.iter_traces(*data.window, limit=64, direction="up")]
        assert ids == list(reversed(data.trace_ids))  # up: from the newest, older
        spans = [s.id async for s in usage.iter_spans_by_trace_id(data.deep_trace_id, limit=17)]
        assert sorted(spans) == sorted(data.deep_spans)


# ------------------------------------------------------------------------------------------------
# Pagination


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["down", "up"])
def test_paging_every_page_size_has_no_repeats_or_gaps(usage: UsageClient, data: Dataset, direction: str) -> None:
    # Default sort: start time, oldest first: "down" reads newer traces (forward in time), "up" reads
    # the same listing from its end (newest first, older), as the Netra docs say.
    expected = data.trace_ids if direction == "down" else list(reversed(data.trace_ids))
    for limit in (1, 2, 3, 4, 5, 6, 7, 1000):
        got = [t.id for t in usage.iter_traces(*data.window, limit=limit, direction=direction)]
        assert len(got) == len(set(got)), f"repeats with limit={limit}"
        assert got == expected, f"limit={limit} {direction}"


def test_manual_paging_with_filters_and_ascending_sort(usage: UsageClient, data: Dataset) -> None:
    tenant = TENANTS[2]
    expected = [t for t in data.trace_ids if data.tenant_of[t] == tenant]
    seen: list[str] = []
    cursor = None
    while True:
        page = usage.list_traces(*data.window, tenant_id=tenant, limit=9, cursor=cursor, sort_order="asc")
        assert len(page.traces) <= 9
        assert all(t.tenant_id == tenant for t in page.traces)
        seen += [t.id for t in page.traces]
        if not page.has_next_page:
            break
        cursor = page.next_cursor
    assert seen == expected
    one = usage.list_traces(*data.window, trace_id=expected[3])
    assert [t.id for t in one.traces] == [expected[3]] and not one.has_next_page
    trace = one.traces[0]
    assert trace.session_id is not None and trace.session_id.startswith("meeting-")
    assert trace.total_tokens is not None and trace.total_tokens > 0
    assert trace.models == [MODELS[data.trace_ids.index(expected[3]) % 2]]


def test_walks_the_spans_of_a_deep_trace(usage: UsageClient, data: Dataset) -> None:
    all_ids = set(data.deep_spans)
    for limit in (1, 7, 1000):
        down = list(usage.iter_spans_by_trace_id(data.deep_trace_id, limit=limit))
        up = list(usage.iter_spans_by_trace_id(data.deep_trace_id, limit=limit, direction="up"))
        assert [s.id for s in down] == [s.id for s in reversed(up)]
        assert len(down) == len(all_ids) and {s.id for s in down} == all_ids
    assert {s.id: s.parent_span_id for s in down} == data.deep_spans
    assert all(s.tenant_id == "deep-tenant" and s.trace_id == data.deep_trace_id for s in down)
    named = list(usage.iter_spans_by_trace_id(data.deep_trace_id, span_name="level-42"))
    assert [s.name for s in named] == ["level-42"]
    # The per-span rollup: the root's rollup is the whole trace.
    tu = usage.get_trace_usage(data.deep_trace_id)
    assert tu is not None
    assert tu.total.request_count == DEEP_LEVELS
    assert tu.total.total_tokens == data.deep_tokens
    assert tu.total.total_cost == data.deep_cost
    root = next(s for s in tu.spans if s.parent_span_id is None)
    assert root.name == "level-0" and root.rollup == tu.total
    deepest = next(s for s in tu.spans if s.name == f"level-{DEEP_LEVELS - 1}")
    assert deepest.rollup.request_count == 1 and not deepest.counted
    # The deep trace is listed only in its own window.
    listed = usage.list_traces(*data.deep_window, tenant_id="deep-tenant")
    assert [t.id for t in listed.traces] == [data.deep_trace_id]


def test_unknown_trace(usage: UsageClient) -> None:
    assert usage.get_trace_usage("0" * 31 + "1") is None
    page = usage.list_spans_by_trace_id("0" * 31 + "1")
    assert page is not None and page.spans == [] and not page.has_next_page
    with pytest.raises(BadRequestError, match="32 hexadecimal"):
        usage.list_spans_by_trace_id("not-a-trace")


def test_ids_with_reserved_characters_round_trip(usage: UsageClient) -> None:
    odd = "tenant ?#%&=+é"
    got = usage.get_tenant_usage(odd, "2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
    assert got is not None and got.tenant_id == odd and got.request_count == 0


# ------------------------------------------------------------------------------------------------
# Keys


def test_wrong_and_limited_keys(srv: RunningServer, data: Dataset) -> None:
    with UsageClient(srv.base_url, "nk_wrong") as bad, pytest.raises(AuthenticationError, match="NETRA_API_KEY"):
        bad.get_tenant_usage(TENANTS[0], *data.window)
    limited_key = srv.create_key(role="read", tenant_id=TENANTS[0])
    with UsageClient(srv.base_url, limited_key) as limited:
        own = limited.get_tenant_usage(TENANTS[0], *data.window)
        assert own is not None and own.request_count == data.by_tenant[TENANTS[0]].requests
        with pytest.raises(PermissionDeniedError):
            limited.get_tenant_usage(TENANTS[1], *data.window)
        listed = [t.tenant_id for t in limited.iter_traces(*data.window, limit=100)]
        assert listed and set(listed) == {TENANTS[0]}


# ------------------------------------------------------------------------------------------------
# The billing rule, through the SDK: set_usage around an auto-instrumented OpenAI call counts once.


def test_set_usage_around_an_instrumented_openai_call_counts_once(srv: RunningServer) -> None:
    import openai
    from netra_server.demo.fake_openai import serve_fake_openai

    from netra import Netra, UsageModel
    from netra._testing import reset
    from netra.instrumentation.instruments import InstrumentSet

    reset()
    usage_client: UsageClient | None = None
    tenant, session = "billing-rule-tenant", "billing-rule-session"
    started = datetime.now(UTC) - timedelta(seconds=1)
    try:
        Netra.init(
            app_name="usage-e2e",
            endpoint=srv.base_url,
            api_key=srv.api_key,
            instruments={InstrumentSet.OPENAI},
            disable_batch=True,
        )
        with serve_fake_openai(latency_scale=0) as openai_url:
            client = openai.OpenAI(base_url=openai_url, api_key="sk-local", max_retries=0)
            with Netra.context(tenant_id=tenant, session_id=session, user_id="alice"):
                with Netra.start_span("meeting-summarization") as span:
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "Summarize: the budget was approved."}],
                    )
                    assert reply.usage is not None
                    span.set_usage(
                        [UsageModel(model="gpt-4o-mini", usage_type="chat", units_used=reply.usage.total_tokens,
                                    cost_in_usd=0.5)]
                    )
                trace_id = span.trace_id
            client.close()
        assert Netra.flush(30)
        ended = datetime.now(UTC) + timedelta(seconds=1)

        usage = usage_client = Netra.usage
        deadline = time.monotonic() + 30
        while True:
            tu = usage.get_trace_usage(trace_id)
            if tu is not None and len(tu.spans) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert tu is not None, "the trace never reached the server"
        names = {s.name: s for s in tu.spans}
        root = names["meeting-summarization"]
        (llm,) = [s for s in tu.spans if s.parent_span_id == root.span_id]
        assert root.has_usage and root.covered and not root.counted
        assert llm.counted and llm.own.input_tokens == reply.usage.prompt_tokens
        assert llm.own.output_tokens == reply.usage.completion_tokens
        assert llm.own.cost is not None and llm.own.cost > 0

        t = usage.get_tenant_usage(tenant, started, ended)
        s = usage.get_session_usage(session, started, ended)
        assert t is not None and s is not None
        assert t.request_count == s.request_count == 1
        assert t.token_count == s.token_count == reply.usage.prompt_tokens + reply.usage.completion_tokens
        # The OpenAI call's cost, once: not the 0.5 recorded by set_usage, and not both.
        assert t.total_cost_usd == s.total_cost_usd == llm.own.cost
        assert tu.total.total_cost == llm.own.cost
    finally:
        reset()
    assert usage_client is not None and usage_client.closed, "Netra.shutdown() must close Netra.usage"


def test_set_usage_tokens_reach_the_tenants_totals(srv: RunningServer) -> None:
    """UsageModel's input/output/cached tokens are the span's tokens on the server; units of a token
    kind ("chat") are tokens (input: the split is not known); units of another kind ("audio_minutes")
    count as a request and a cost, not tokens."""
    from netra import Netra, UsageModel
    from netra._testing import reset

    reset()
    tenant = "explicit-tokens-tenant"
    started = datetime.now(UTC) - timedelta(seconds=1)
    try:
        Netra.init(app_name="usage-e2e", endpoint=srv.base_url, api_key=srv.api_key, disable_batch=True)
        with Netra.context(tenant_id=tenant, session_id="explicit-tokens-session", user_id="alice"):
            with Netra.start_span("summarize") as span:
                span.set_usage([UsageModel(model="my-llm", usage_type="chat", units_used=1580, cost_in_usd=0.0004,
                                           input_tokens=1200, output_tokens=380, cached_tokens=200)])
            with Netra.start_span("transcribe") as span:
                span.set_usage([UsageModel(model="whisper-1", usage_type="audio_minutes", units_used=42,
                                           cost_in_usd=0.252)])
            with Netra.start_span("legacy-chat") as span:  # no token fields: 1580 units of "chat" are tokens
                span.set_usage([UsageModel(model="my-llm", usage_type="chat", units_used=1580, cost_in_usd=0.001)])
            with Netra.start_span("split-by-kind") as span:
                span.set_usage([UsageModel(model="my-llm", usage_type="input_tokens", units_used=90, cost_in_usd=0.0),
                                UsageModel(model="my-llm", usage_type="output_tokens", units_used=10, cost_in_usd=0.0)])
        assert Netra.flush(30)
        ended = datetime.now(UTC) + timedelta(seconds=1)
        with UsageClient(srv.base_url, srv.api_key) as usage:
            deadline = time.monotonic() + 30
            while True:
                t = usage.get_tenant_usage(tenant, started, ended)
                if t is not None and t.request_count >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert t is not None
            assert (t.request_count, t.token_count, t.session_count) == (4, 1200 + 380 + 1580 + 90 + 10, 1)
            assert t.total_cost_usd == Decimal("0.0004") + Decimal("0.252") + Decimal("0.001")
            summary = usage.get_usage_summary(started, ended, group_by="tenant", tenant_id=tenant)
            (group,) = summary.groups
            assert (group.input_tokens, group.output_tokens, group.cached_tokens) == (1290 + 1580, 390, 200)
    finally:
        reset()


# ------------------------------------------------------------------------------------------------
# The docs page: every example runs as it is.


def _doc_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


@pytest.mark.slow
def test_every_docs_example_runs(srv: RunningServer, data: Dataset) -> None:
    examples = _doc_examples()
    assert len(examples) >= 10
    env = {
        **os.environ,
        "NETRA_OTLP_ENDPOINT": srv.base_url,
        "NETRA_API_KEY": srv.api_key,
        "PYTHONWARNINGS": "error::RuntimeWarning",
    }
    env.pop("NETRA_HEADERS", None)
    outputs: list[str] = []
    for code in examples:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"example failed:\n{code}\n--- stderr:\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    joined = "\n".join(outputs)
    expected = data.by_tenant["apex-legal"]
    assert f"apex-legal {expected.requests} {expected.tokens}" in joined
    assert "refused: 401" in joined


def test_ids_with_a_slash_round_trip(srv: RunningServer, data: Dataset, usage: UsageClient) -> None:
    # The client escapes ids (org/team -> org%2Fteam); the server's routes take the escaped id whole.
    tenant, session, user = "org/team", "org/team/call?1#2", "u/../x"
    start = data.base_ns - 3600 * 10**9  # outside the other tests' windows
    provider = TracerProvider(resource=Resource.create({"service.name": "usage-e2e-slash"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=srv.otlp_endpoint, headers=srv.headers)))
    tracer = provider.get_tracer("usage-e2e")
    for i in range(3):
        attrs = {**_context_attrs(tenant, session, user), semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                 semconv.GEN_AI_USAGE_INPUT_TOKENS: 10 + i, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
                 semconv.COST: 0.25}
        tracer.start_span("chat", attributes=attrs, start_time=start + i * 1000).end(end_time=start + i * 1000 + 500)
    provider.shutdown()  # each span was exported (and acknowledged as durable) when it ended
    window = (iso(start), iso(start + 10**9))

    t = usage.get_tenant_usage(tenant, *window)
    assert t is not None and (t.tenant_id, t.request_count, t.token_count, t.session_count) == (tenant, 3, 36, 1)
    assert t.total_cost_usd == Decimal("0.75")
    s = usage.get_session_usage(session, *window)
    assert s is not None and (s.session_id, s.request_count, s.token_count) == (session, 3, 36)
    traces = list(usage.iter_traces(*window, tenant_id=tenant, user_id=user))
    assert len(traces) == 3 and {x.session_id for x in traces} == {session}
    spans = usage.list_spans_by_trace_id(traces[0].id)
    assert spans is not None and [x.tenant_id for x in spans.spans] == [tenant]
    limited = srv.create_key(role="read", tenant_id=tenant)
    with UsageClient(srv.base_url, limited) as own:
        mine = own.get_tenant_usage(tenant, *window)
        assert mine is not None and mine.request_count == 3
        with pytest.raises(PermissionDeniedError):
            own.get_tenant_usage("org", *window)
    with pytest.raises(BadRequestError, match="32 hexadecimal"):  # a trace id with '/' is refused, not a 404
        usage.list_spans_by_trace_id("a/b")
    for dots in (".", ".."):  # not dot segments that a URL normaliser would resolve away
        d = usage.get_tenant_usage(dots, *window)
        assert d is not None and d.tenant_id == dots and d.request_count == 0
