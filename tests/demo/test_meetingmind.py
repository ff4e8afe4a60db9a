"""The MeetingMind workload: rate limiter logic, sample data, and the summarizer end to end.

The end-to-end tests use the real parts: the ``openai`` client against the local OpenAI-compatible
endpoint, Netra with the OpenAI instrumentation, the OTLP exporter, and a real Netra server
(``netra serve`` in a child process, chDB in a temporary folder).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import openai
import pytest
from netra_server.demo.fake_openai import FakeOpenAIConfig, FakeOpenAIServer
from netra_server.demo.meetingmind import (
    SLA_BREACH_EVENT,
    SPAN_NAME,
    TENANTS,
    TIERS,
    MultiTenantMeetingSummarizer,
    RateLimitExceeded,
    SimulatedClock,
    SlidingWindowLimiter,
    Tenant,
    percentile,
    sample_meetings,
    totals_by_tenant,
)
from netra_server.testing import RunningServer, run_server

from netra import Netra
from netra._testing import reset
from netra.instrumentation.instruments import InstrumentSet
from netra.pricing import price_tokens

# -- the limiter ------------------------------------------------------------------------------------


def test_limiter_admits_up_to_the_limit_then_rejects_without_queue() -> None:
    lim = SlidingWindowLimiter("t", limit=3, window=60.0, max_wait=0.0)
    assert [lim.reserve(0.0), lim.reserve(1.0), lim.reserve(2.0)] == [0.0, 1.0, 2.0]
    with pytest.raises(RateLimitExceeded) as info:
        lim.reserve(3.0)
    assert info.value.retry_after == pytest.approx(57.0)
    assert "3 calls per minute" in str(info.value)
    # a rejected call takes no slot: at t=60 the first slot is free again
    assert lim.reserve(60.0) == 60.0


def test_limiter_queues_within_max_wait_first_come_first_served() -> None:
    lim = SlidingWindowLimiter("t", limit=2, window=60.0, max_wait=30.0)
    assert lim.reserve(0.0) == 0.0
    assert lim.reserve(40.0) == 40.0
    assert lim.reserve(45.0) == 60.0  # waits 15 s for the first call to leave the window
    with pytest.raises(RateLimitExceeded):
        lim.reserve(50.0)  # the next slot is at 100 s: a 50 s wait is over 30 s


@pytest.mark.parametrize("seed", range(5))
def test_limiter_never_lets_more_than_limit_start_in_any_window(seed: int) -> None:
    rng = random.Random(seed)
    limit, window = rng.randint(1, 12), 60.0
    lim = SlidingWindowLimiter("t", limit=limit, window=window, max_wait=rng.choice([0.0, 20.0, 90.0]))
    starts = []
    now = 0.0
    for _ in range(400):
        now += rng.expovariate(1 / 3.0)
        try:
            start = lim.reserve(now)
        except RateLimitExceeded as exc:
            assert exc.retry_after > lim.max_wait
            continue
        assert now <= start <= now + lim.max_wait + 1e-9
        starts.append(start)
    assert starts == sorted(starts)
    for i, s in enumerate(starts):
        in_window = [t for t in starts[i:] if t < s + window]
        assert len(in_window) <= limit


def test_sample_meetings_are_deterministic_and_grouped_in_sessions() -> None:
    counts = {"apex-legal": 20, "stratex-consulting": 10, "techstart-inc": 5}
    a = sample_meetings(counts, seed=3, duration_s=600, bursty={"techstart-inc": 5})
    b = sample_meetings(counts, seed=3, duration_s=600, bursty={"techstart-inc": 5})
    assert a == b
    assert [m.arrival_s for m in a] == sorted(m.arrival_s for m in a)
    assert {t: sum(m.tenant_id == t for m in a) for t in counts} == counts
    for tenant in counts:
        sessions = {m.session_id for m in a if m.tenant_id == tenant}
        assert 1 <= len(sessions) <= counts[tenant]
        assert all(s.startswith(tenant) for s in sessions)
    assert sample_meetings(counts, seed=4) != a


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0], 95) == 10.0
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


# -- end to end -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("meetingmind"), subprocess=True) as srv:
        yield srv


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0.01)) as fake:
        yield openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def netra(server: RunningServer) -> Iterator[None]:
    reset()
    Netra.init(app_name="meetingmind-test", endpoint=server.base_url, api_key=server.api_key,
               instruments={InstrumentSet.OPENAI})
    yield
    reset()


def _wait_for(server: RunningServer, tenant: str, start: datetime, requests: int) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:
        usage = Netra.usage.get_tenant_usage(tenant, start, datetime.now(UTC) + timedelta(seconds=1))
        if usage is not None and usage.request_count >= requests:
            return
        assert time.monotonic() < deadline, f"server has {usage} for {tenant}, expected {requests} requests"
        time.sleep(0.1)


@pytest.mark.slow
def test_summarizer_bills_each_call_once_and_records_sla_breaches(
    server: RunningServer, client: openai.OpenAI, netra: None
) -> None:
    # a tier whose SLA every call breaches (1 ms) and a limit of 3 calls per minute without queueing
    strict = replace(TIERS["professional"], name="strict", sla_p95_ms=1, calls_per_minute=3, max_queue_seconds=0)
    tenants = {"acme-strict": Tenant("acme-strict", "Acme Strict", strict)}
    summarizer = MultiTenantMeetingSummarizer(client, tenants=tenants)
    meetings = [replace(m, tenant_id="acme-strict")
                for m in sample_meetings({"stratex-consulting": 5}, seed=5)]
    start = datetime.now(UTC) - timedelta(seconds=1)
    results = [summarizer.summarize(m) for m in meetings]

    served = [r for r in results if r.status == "ok"]
    assert [r.status for r in results] == ["ok"] * 3 + ["rate_limited"] * 2
    assert all(r.sla_breached for r in served)
    for r in served:
        expected = price_tokens(r.model, provider="openai", input_tokens=r.input_tokens,
                                output_tokens=r.output_tokens, cached_input_tokens=r.cached_tokens).cost
        assert expected is not None and r.cost_usd == expected

    assert Netra.flush()
    _wait_for(server, "acme-strict", start, 3)
    end = datetime.now(UTC) + timedelta(seconds=1)
    usage = Netra.usage.get_tenant_usage("acme-strict", start, end)
    assert usage is not None
    assert usage.request_count == 3  # not 6: the summarization span and its OpenAI child count once
    assert usage.token_count == sum(r.total_tokens for r in served)
    assert usage.total_cost_usd == sum(r.cost_usd for r in served)  # exact: Decimal end to end
    assert usage.session_count == len({r.session_id for r in results})

    for r in served:
        trace = Netra.usage.get_trace_usage(r.trace_id)
        assert trace is not None
        assert trace.total.request_count == 1
        names = {s.name: s for s in trace.spans}
        assert names[SPAN_NAME].has_usage and not names[SPAN_NAME].counted
        llm = [s for s in trace.spans if s.name != SPAN_NAME]
        assert len(llm) == 1 and llm[0].counted and llm[0].model == r.model
        spans = list(Netra.usage.iter_spans_by_trace_id(r.trace_id))
        root = next(s for s in spans if s.name == SPAN_NAME)
        events = [e for e in root.events_list() if e["name"] == SLA_BREACH_EVENT]
        assert len(events) == 1
        assert events[0]["attributes"]["threshold_ms"] == 1
    rejected = [r for r in results if r.status == "rate_limited"]
    traces = list(Netra.usage.iter_traces(start, end, tenant_id="acme-strict"))
    assert sum(t.has_error for t in traces) == len(rejected) == 2
    assert {t.id for t in traces if t.has_error} == {r.trace_id for r in rejected}


@pytest.mark.slow
def test_simulated_clock_queues_without_sleeping(client: openai.OpenAI, netra: None) -> None:
    clock = SimulatedClock()
    tier = replace(TIERS["enterprise"], calls_per_minute=2, max_queue_seconds=60)
    summarizer = MultiTenantMeetingSummarizer(client, tenants={"q": Tenant("q", "Q", tier)}, clock=clock)
    meetings = [replace(m, tenant_id="q", arrival_s=0.0) for m in sample_meetings({"apex-legal": 3}, seed=1)]
    admissions = [summarizer.admit(m, m.arrival_s) for m in meetings]
    assert [a.wait for a in admissions] == [0.0, 0.0, 60.0]
    results = [summarizer.summarize(m, a) for m, a in zip(meetings, admissions, strict=True)]
    assert clock.slept == 60.0
    assert [r.queued_s for r in results] == [0.0, 0.0, 60.0]
    totals = totals_by_tenant(results, ["q"])["q"]
    assert totals.requests == 3 and totals.queued == 1 and totals.rate_limited == 0


def test_tier_table_is_the_cookbook_scenario() -> None:
    table = {t.name: (t.tier.name, t.tier.sla_p95_ms, t.tier.calls_per_minute) for t in TENANTS.values()}
    assert table == {
        "Apex Legal": ("enterprise", 2000, 60),
        "Stratex Consulting": ("professional", 3000, 30),
        "TechStart Inc": ("starter", None, 10),
    }
