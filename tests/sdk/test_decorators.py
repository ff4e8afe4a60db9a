"""@workflow, @task, @agent, @span on sync, async, generator and async-generator functions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from netra import SpanType, agent, semconv, span, task, workflow

from .conftest import by_name


def test_sync_and_nesting(netra_memory: InMemorySpanExporter) -> None:
    @task
    def step(x: int) -> int:
        return x * 2

    @workflow(name="pipeline")
    def run() -> int:
        return step(1) + step(2)

    assert run() == 6
    spans = netra_memory.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("test_sync_and_nesting.<locals>.step") == 2
    pipeline = next(s for s in spans if s.name == "pipeline")
    for s in spans:
        if s.name != "pipeline":
            assert s.parent is not None and s.parent.span_id == pipeline.context.span_id
            assert (s.attributes or {})[semconv.ENTITY_KIND] == "task"
    assert (pipeline.attributes or {})[semconv.ENTITY_KIND] == "workflow"
    assert run.__name__ == "run"


async def test_async_agent_and_options(netra_memory: InMemorySpanExporter) -> None:
    @agent
    async def planner() -> str:
        await asyncio.sleep(0)
        return "plan"

    @span(name="lookup", as_type=SpanType.TOOL, attributes={"tool": "search"})
    async def lookup() -> int:
        return 1

    assert await planner() == "plan"
    assert await lookup() == 1
    spans = by_name(netra_memory)
    assert (spans["test_async_agent_and_options.<locals>.planner"].attributes or {})[semconv.SPAN_TYPE] == "agent"
    attrs = spans["lookup"].attributes or {}
    assert attrs[semconv.SPAN_TYPE] == "tool" and attrs["tool"] == "search"


def test_generator_span_covers_iteration_and_is_not_current_in_consumer(
    netra_memory: InMemorySpanExporter,
) -> None:
    seen_inside: list[trace.Span] = []

    @task(name="numbers")
    def numbers() -> Iterator[int]:
        for i in range(3):
            seen_inside.append(trace.get_current_span())
            yield i

    consumer_spans = []
    for _ in numbers():
        consumer_spans.append(trace.get_current_span())
    (s,) = netra_memory.get_finished_spans()
    assert s.name == "numbers" and s.status.status_code is StatusCode.UNSET
    assert all(sp.get_span_context().span_id == s.context.span_id for sp in seen_inside)
    assert all(sp is trace.INVALID_SPAN for sp in consumer_spans)


def test_generator_send_return_value_and_early_close(netra_memory: InMemorySpanExporter) -> None:
    @task(name="echo")
    def echo() -> Iterator[int]:
        received = yield 0
        while received is not None:
            received = yield received * 10

    gen = echo()
    assert next(gen) == 0
    assert gen.send(2) == 20
    gen.close()  # consumer stops early: not an error

    @task(name="with-return")
    def with_return() -> Iterator[int]:
        yield 1
        return

    assert list(with_return()) == [1]
    spans = by_name(netra_memory)
    assert spans["echo"].status.status_code is StatusCode.UNSET
    assert spans["with-return"].status.status_code is StatusCode.UNSET


def test_generator_error_and_throw(netra_memory: InMemorySpanExporter) -> None:
    @task(name="breaks")
    def breaks() -> Iterator[int]:
        yield 1
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        list(breaks())

    @task(name="recovers")
    def recovers() -> Iterator[str]:
        try:
            yield "first"
        except KeyError:
            yield "recovered"

    gen = recovers()
    assert next(gen) == "first"
    assert gen.throw(KeyError("x")) == "recovered"
    gen.close()
    spans = by_name(netra_memory)
    assert spans["breaks"].status.status_code is StatusCode.ERROR
    assert spans["recovers"].status.status_code is StatusCode.UNSET


async def test_async_generator(netra_memory: InMemorySpanExporter) -> None:
    @workflow(name="stream")
    async def stream() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    assert [i async for i in stream()] == [0, 1, 2]

    @workflow(name="stream-fails")
    async def stream_fails() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("upstream closed")

    with pytest.raises(RuntimeError):
        async for _ in stream_fails():
            pass

    @workflow(name="stream-closed")
    async def stream_closed() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    agen = stream_closed()
    assert await agen.__anext__() == 0
    await agen.aclose()
    spans = by_name(netra_memory)
    assert spans["stream"].status.status_code is StatusCode.UNSET
    assert spans["stream-fails"].status.status_code is StatusCode.ERROR
    assert spans["stream-closed"].status.status_code is StatusCode.UNSET


async def test_async_cancellation_is_error(netra_memory: InMemorySpanExporter) -> None:
    started = asyncio.Event()

    @task(name="slow")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(30)

    t = asyncio.create_task(slow())
    await started.wait()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    (s,) = netra_memory.get_finished_spans()
    assert s.status.status_code is StatusCode.ERROR


def test_methods_and_bad_use(netra_memory: InMemorySpanExporter) -> None:
    class Service:
        @task
        def handle(self, x: int) -> int:
            return x + 1

    assert Service().handle(1) == 2
    assert netra_memory.get_finished_spans()[0].name == "test_methods_and_bad_use.<locals>.Service.handle"
    with pytest.raises(TypeError, match="decorates a function"):
        task("not-a-function")  # type: ignore[call-overload]
