"""The billing rule: a span with usage marks its still-open ancestors netra.usage.covered = true."""

from __future__ import annotations

import asyncio
import contextvars
import gc
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra, UsageModel, semconv
from netra._netra import _state
from netra.processors import ContextSpanProcessor, UsageCoverageSpanProcessor

from .conftest import by_name

USAGE = [UsageModel(model="gpt-4o-mini", usage_type="chat", units_used=1580, cost_in_usd=0.0004)]


def covered(span: object) -> bool:
    return bool((getattr(span, "attributes", None) or {}).get(semconv.USAGE_COVERED, False))


def open_spans() -> int:
    assert _state.runtime is not None
    return len(_state.runtime.pipeline.processor.open_spans)


def test_cookbook_shape(netra_memory: InMemorySpanExporter) -> None:
    """set_usage around an auto-traced LLM call: the tenant pays for the LLM call once."""
    llm = trace.get_tracer("netra_instrumentation_openai")
    with Netra.start_span("request"), Netra.start_span("meeting-summarization") as span:
        span.set_usage(USAGE)
        with llm.start_as_current_span("chat gpt-4o-mini") as call:
            call.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, 1200)
            call.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, 380)
    spans = by_name(netra_memory)
    assert not covered(spans["chat gpt-4o-mini"])
    assert covered(spans["meeting-summarization"])  # its own usage is shown, but not counted again
    assert covered(spans["request"])
    assert open_spans() == 0


def test_own_usage_covers_ancestors_not_itself(netra_memory: InMemorySpanExporter) -> None:
    with Netra.start_span("a"), Netra.start_span("b"), Netra.start_span("c") as c:
        c.set_usage(USAGE)
    with Netra.start_span("sibling-root"):
        pass
    spans = by_name(netra_memory)
    assert [covered(spans[n]) for n in ("a", "b", "c", "sibling-root")] == [True, True, False, False]


@pytest.mark.parametrize(
    "attribute",
    [semconv.USAGE, semconv.COST, semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.LEGACY_PROMPT_TOKENS,
     semconv.OPENINFERENCE_COMPLETION_TOKENS],
)
def test_every_usage_bearing_attribute_counts(netra_memory: InMemorySpanExporter, attribute: str) -> None:
    with Netra.start_span("parent"), trace.get_tracer("lib").start_as_current_span("leaf") as leaf:
        leaf.set_attribute(attribute, 1 if attribute != semconv.USAGE else "[]")
    assert covered(by_name(netra_memory)["parent"])


def test_ancestor_that_already_ended_is_not_marked(netra_memory: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("lib")
    parent = tracer.start_span("parent")
    child = tracer.start_span("late-child", context=trace.set_span_in_context(parent))
    parent.end()
    child.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, 5)
    child.end()  # parent is no longer open: its usage (none) stays countable, no warning
    spans = by_name(netra_memory)
    assert not covered(spans["parent"])


async def test_async_tasks(netra_memory: InMemorySpanExporter) -> None:
    async def call(i: int) -> None:
        async with Netra.start_span(f"call-{i}") as s:
            await asyncio.sleep(0)
            if i % 2 == 0:
                s.set_usage(USAGE)

    async with Netra.start_span("fan-out"):
        await asyncio.gather(*(call(i) for i in range(6)))
    async with Netra.start_span("no-usage-fan-out"):
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(3)))
    spans = by_name(netra_memory)
    assert covered(spans["fan-out"])
    assert not covered(spans["no-usage-fan-out"])
    assert not any(covered(spans[f"call-{i}"]) for i in range(6))
    assert open_spans() == 0


def test_threads(netra_memory: InMemorySpanExporter) -> None:
    def call(i: int) -> None:
        with Netra.start_span(f"thread-call-{i}") as s:
            if i == 3:
                s.set_usage(USAGE)

    for root, with_usage in (("pool-with-usage", range(8)), ("pool-without", range(4))):
        with Netra.start_span(root), ThreadPoolExecutor(max_workers=2) as pool:
            for f in [pool.submit(contextvars.copy_context().run, call, i + (0 if with_usage == range(8) else 100))
                      for i in with_usage]:
                f.result()
    spans = by_name(netra_memory)
    assert covered(spans["pool-with-usage"])
    assert not covered(spans["pool-without"])
    assert open_spans() == 0


def test_many_concurrent_threads_no_leak(netra_memory: InMemorySpanExporter) -> None:
    def request(i: int) -> None:
        with Netra.context(tenant_id=f"t{i % 3}"), Netra.start_span(f"req-{i}"), Netra.start_span(f"work-{i}") as w:
            w.set_usage(USAGE)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(request, range(200)))
    spans = by_name(netra_memory)
    assert all(covered(spans[f"req-{i}"]) and not covered(spans[f"work-{i}"]) for i in range(200))
    assert all((spans[f"req-{i}"].attributes or {})[semconv.TENANT_ID] == f"t{i % 3}" for i in range(200))
    assert open_spans() == 0
    gc.collect()


def test_blocked_span_usage_does_not_cover(memory_exporter: InMemorySpanExporter) -> None:
    Netra.init(span_exporter=memory_exporter, disable_batch=True, instruments=set(),
               blocked_spans=["internal-*", "health"])
    with Netra.start_span("visible-parent"), Netra.start_span("internal-llm") as s:
        s.set_usage(USAGE)
    with Netra.start_span("health"):
        pass
    Netra.shutdown()
    spans = by_name(memory_exporter)
    assert set(spans) == {"visible-parent"}
    assert not covered(spans["visible-parent"])  # the blocked span's usage is not exported: keep the parent's


def test_processors_work_with_a_plain_tracer_provider() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(ContextSpanProcessor())
    provider.add_span_processor(UsageCoverageSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("plain")
    with Netra.context(tenant_id="t"), tracer.start_as_current_span("outer"), \
            tracer.start_as_current_span("inner") as inner:
        inner.set_attribute(semconv.COST, 0.5)
    spans = by_name(exporter)
    assert covered(spans["outer"]) and not covered(spans["inner"])
    assert (spans["inner"].attributes or {})[semconv.TENANT_ID] == "t"
