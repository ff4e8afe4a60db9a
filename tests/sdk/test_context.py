"""Request context: stamped on every span (ours and third-party), isolated per task / thread / scope."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra, semconv

from .conftest import by_name

CTX_KEYS = (semconv.TENANT_ID, semconv.SESSION_ID, semconv.USER_ID)


def ctx_of(span: object) -> dict[str, object]:
    attrs = getattr(span, "attributes", None) or {}
    return {k: v for k, v in attrs.items() if k.startswith("netra.") and (k in CTX_KEYS or k.startswith("netra.custom."))}


def test_third_party_spans_get_the_context(netra_memory: InMemorySpanExporter) -> None:
    Netra.set_tenant_id("apex-legal")
    Netra.set_session_id("s-1")
    Netra.set_user_id("john")
    Netra.set_custom_attributes("tier", "enterprise")
    Netra.set_custom_attributes({"region": "eu", "seats": 40})
    tracer = trace.get_tracer("some.third.party")
    with tracer.start_as_current_span("third-party-root"), tracer.start_as_current_span("third-party-child"):
        pass
    for s in netra_memory.get_finished_spans():
        assert ctx_of(s) == {
            semconv.TENANT_ID: "apex-legal", semconv.SESSION_ID: "s-1", semconv.USER_ID: "john",
            "netra.custom.tier": "enterprise", "netra.custom.region": "eu", "netra.custom.seats": 40,
        }


def test_clearing_and_overwriting(netra_memory: InMemorySpanExporter) -> None:
    Netra.set_tenant_id("a")
    Netra.set_tenant_id("b")
    Netra.set_user_id("u")
    Netra.set_user_id(None)
    Netra.set_custom_attributes("k", "v")
    Netra.set_custom_attributes("k", None)
    with Netra.start_span("one"):
        pass
    assert Netra.get_context() == {semconv.TENANT_ID: "b"}
    Netra.clear_context()
    with Netra.start_span("two"):
        pass
    spans = by_name(netra_memory)
    assert ctx_of(spans["one"]) == {semconv.TENANT_ID: "b"}
    assert ctx_of(spans["two"]) == {}


def test_explicit_span_attribute_wins(netra_memory: InMemorySpanExporter) -> None:
    Netra.set_tenant_id("from-context")
    Netra.set_user_id("u")
    with Netra.start_span("explicit", attributes={semconv.TENANT_ID: "explicit-tenant"}):
        pass
    (s,) = netra_memory.get_finished_spans()
    assert ctx_of(s) == {semconv.TENANT_ID: "explicit-tenant", semconv.USER_ID: "u"}


def test_scoped_context_restores(netra_memory: InMemorySpanExporter) -> None:
    Netra.set_tenant_id("outer")
    with Netra.context(tenant_id="inner", session_id="s", user_id="u", custom={"plan": "pro"}):
        with Netra.start_span("in-scope"):
            pass
        Netra.set_tenant_id("changed-inside")
    with Netra.start_span("after-scope"):
        pass
    with Netra.context(session_id="only-session", inherit=False), Netra.start_span("no-inherit"):
        pass
    with Netra.context(session_id="s2"), Netra.start_span("inherit"):
        pass
    spans = by_name(netra_memory)
    assert ctx_of(spans["in-scope"]) == {
        semconv.TENANT_ID: "inner", semconv.SESSION_ID: "s", semconv.USER_ID: "u", "netra.custom.plan": "pro"
    }
    assert ctx_of(spans["after-scope"]) == {semconv.TENANT_ID: "outer"}
    assert ctx_of(spans["no-inherit"]) == {semconv.SESSION_ID: "only-session"}
    assert ctx_of(spans["inherit"]) == {semconv.TENANT_ID: "outer", semconv.SESSION_ID: "s2"}


async def test_asyncio_tasks_are_isolated(netra_memory: InMemorySpanExporter) -> None:
    barrier = asyncio.Barrier(3)

    async def request(tenant: str) -> None:
        Netra.set_tenant_id(tenant)
        await barrier.wait()  # all three tenants are set before anyone starts a span
        async with Netra.context(session_id=f"sess-{tenant}"):
            with trace.get_tracer("lib").start_as_current_span(f"span-{tenant}"):
                await asyncio.sleep(0)

    await asyncio.gather(request("t1"), request("t2"), request("t3"))
    spans = by_name(netra_memory)
    for t in ("t1", "t2", "t3"):
        assert ctx_of(spans[f"span-{t}"]) == {semconv.TENANT_ID: t, semconv.SESSION_ID: f"sess-{t}"}
    assert Netra.get_context() == {}


def test_threads_are_isolated_and_bind_context_carries_it(netra_memory: InMemorySpanExporter) -> None:
    results: dict[str, dict[str, object]] = {}

    def plain_thread() -> None:
        results["fresh-thread"] = Netra.get_context()

    Netra.set_tenant_id("parent-tenant")
    t = threading.Thread(target=plain_thread)
    t.start()
    t.join()
    assert results["fresh-thread"] == {}  # a new thread does not inherit (Python semantics)

    def work(i: int) -> str:
        with Netra.start_span(f"pool-{i}") as span:
            Netra.set_user_id(f"user-{i}")  # stays inside this call's context copy
            return span.trace_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        bound = [pool.submit(Netra.bind_context(work), i) for i in range(4)]
        copied = [pool.submit(contextvars.copy_context().run, work, 10 + i) for i in range(2)]
        unbound = pool.submit(work, 99)
        for f in [*bound, *copied, unbound]:
            f.result()
    spans = by_name(netra_memory)
    for i in [0, 1, 2, 3, 10, 11]:
        assert ctx_of(spans[f"pool-{i}"]) == {semconv.TENANT_ID: "parent-tenant"}
    assert ctx_of(spans["pool-99"]) == {}
    assert Netra.get_context() == {semconv.TENANT_ID: "parent-tenant"}


def test_inbound_baggage_never_sets_tenant_session_or_user(netra_memory: InMemorySpanExporter) -> None:
    headers = {"baggage": "netra.tenant_id=victim,tenant_id=victim,netra.user_id=victim,session.id=victim"}
    ctx = W3CBaggagePropagator().extract(headers)
    assert baggage.get_baggage("netra.tenant_id", ctx) == "victim"  # the header was understood...
    token = otel_context.attach(ctx)
    try:
        with Netra.start_span("request"):
            pass
    finally:
        otel_context.detach(token)
    (s,) = netra_memory.get_finished_spans()
    assert ctx_of(s) == {}  # ...and ignored for billing
    assert Netra.get_context() == {}


def test_context_works_before_init_and_is_stamped_after() -> None:
    Netra.set_tenant_id("early")
    exporter = InMemorySpanExporter()
    Netra.init(span_exporter=exporter, disable_batch=True, instruments=set())
    with trace.get_tracer("x").start_as_current_span("late"):
        pass
    Netra.shutdown()
    (s,) = exporter.get_finished_spans()
    assert ctx_of(s) == {semconv.TENANT_ID: "early"}
