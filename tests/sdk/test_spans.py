"""Netra.start_span: the wrapper's methods, sync and async use, errors and cancellation."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from netra import Netra, SpanType, UsageModel, semconv

from .conftest import by_name


def test_issue_example(netra_memory: InMemorySpanExporter) -> None:
    Netra.set_tenant_id("apex-legal")
    Netra.set_session_id("5f1c")
    Netra.set_user_id("john@apex.example")
    with Netra.start_span("meeting-summarization") as span:
        span.set_attribute("tier", "enterprise")
        span.set_usage([UsageModel(model="gpt-4o-mini", cost_in_usd=0.0004, usage_type="chat", units_used=1580)])
        span.add_event("sla-breach", {"actual_ms": 2400, "sla_ms": 2000})
        span.set_success()
        trace_id = span.trace_id
    (finished,) = netra_memory.get_finished_spans()
    attrs = finished.attributes or {}
    assert attrs[semconv.TENANT_ID] == "apex-legal"
    assert attrs[semconv.SESSION_ID] == "5f1c"
    assert attrs[semconv.USER_ID] == "john@apex.example"
    assert attrs["tier"] == "enterprise"
    assert attrs[semconv.SPAN_TYPE] == "span"
    assert json.loads(str(attrs[semconv.USAGE])) == [
        {"model": "gpt-4o-mini", "usage_type": "chat", "units_used": 1580, "cost_in_usd": 0.0004}
    ]
    assert [e.name for e in finished.events] == ["sla-breach"]
    assert dict(finished.events[0].attributes or {}) == {"actual_ms": 2400, "sla_ms": 2000}
    assert finished.status.status_code is StatusCode.OK
    assert trace_id == format(finished.context.trace_id, "032x") and len(trace_id) == 32
    assert finished.resource.attributes["service.name"] == "sdk-tests"
    assert finished.resource.attributes[semconv.ENVIRONMENT] == "test"


def test_usage_token_fields_and_mappings(netra_memory: InMemorySpanExporter) -> None:
    with Netra.start_span("u", as_type=SpanType.USAGE) as span:
        span.set_usage(
            [
                UsageModel("gpt-4o", "chat", 10, 0.01, input_tokens=7, output_tokens=3, cached_tokens=2),
                {"model": "whisper-1", "usage_type": "audio_minutes", "units_used": 1.5, "cost_in_usd": 0.009},
            ]
        )
    (s,) = netra_memory.get_finished_spans()
    assert (s.attributes or {})[semconv.SPAN_TYPE] == "usage"
    assert json.loads(str((s.attributes or {})[semconv.USAGE])) == [
        {"model": "gpt-4o", "usage_type": "chat", "units_used": 10, "cost_in_usd": 0.01,
         "input_tokens": 7, "output_tokens": 3, "cached_tokens": 2},
        {"model": "whisper-1", "usage_type": "audio_minutes", "units_used": 1.5, "cost_in_usd": 0.009},
    ]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": "m", "usage_type": "chat", "units_used": 1, "cost_in_usd": -1}, ValueError),
        ({"model": "m", "usage_type": "chat", "units_used": "3", "cost_in_usd": 1}, TypeError),
        ({"model": "", "usage_type": "chat", "units_used": 1, "cost_in_usd": 1}, TypeError),
        ({"model": "m", "usage_type": "chat", "units_used": 1, "cost_in_usd": float("nan")}, ValueError),
        ({"model": "m", "usage_type": "chat", "units_used": 1, "cost_in_usd": 1, "input_tokens": 1.5}, TypeError),
    ],
)
def test_usage_model_rejects_bad_values(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match="UsageModel"):
        UsageModel(**kwargs)  # type: ignore[arg-type]


def test_all_span_types_and_setters(netra_memory: InMemorySpanExporter) -> None:
    for t in SpanType:
        with Netra.start_span(f"t-{t.value}", as_type=t):
            pass
    with Netra.start_span("gen", as_type="GENERATION", module_name="my.module") as span:
        span.set_model("gpt-4o-mini").set_llm_system("openai").set_prompt("hello there")
    spans = by_name(netra_memory)
    assert {n: (s.attributes or {})[semconv.SPAN_TYPE] for n, s in spans.items() if n.startswith("t-")} == {
        "t-span": "span", "t-generation": "generation", "t-tool": "tool",
        "t-embedding": "embedding", "t-agent": "agent", "t-usage": "usage",
    }
    gen = spans["gen"]
    attrs = gen.attributes or {}
    assert attrs[semconv.SPAN_TYPE] == "generation"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert "hello there" in str(attrs[semconv.GEN_AI_INPUT_MESSAGES])
    assert gen.instrumentation_scope is not None and gen.instrumentation_scope.name == "my.module"
    with pytest.raises(ValueError, match="as_type must be one of"):
        Netra.start_span("bad", as_type="llm")


def test_nested_spans_are_parent_and_child(netra_memory: InMemorySpanExporter) -> None:
    with Netra.start_span("outer") as outer, Netra.start_span("inner") as inner:
        assert trace.get_current_span() is inner.span
        assert inner.trace_id == outer.trace_id
    spans = by_name(netra_memory)
    assert spans["inner"].parent is not None
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_exception_ends_with_error_and_propagates(netra_memory: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError, match="boom"), Netra.start_span("fails") as span:
        span.set_success()  # an escaping exception still wins
        raise RuntimeError("boom")
    (s,) = netra_memory.get_finished_spans()
    assert s.status.status_code is StatusCode.ERROR
    assert s.status.description == "RuntimeError: boom"
    assert [e.name for e in s.events] == ["exception"]
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_base_exceptions_are_errors(netra_memory: InMemorySpanExporter) -> None:
    with pytest.raises(KeyboardInterrupt), Netra.start_span("interrupted"):
        raise KeyboardInterrupt
    (s,) = netra_memory.get_finished_spans()
    assert s.status.status_code is StatusCode.ERROR


async def test_async_with_and_cancellation(netra_memory: InMemorySpanExporter) -> None:
    async with Netra.start_span("async-ok") as span:
        await asyncio.sleep(0)
        span.set_success()

    started = asyncio.Event()

    async def worker() -> None:
        async with Netra.start_span("cancelled"):
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(worker())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spans = by_name(netra_memory)
    assert spans["async-ok"].status.status_code is StatusCode.OK
    assert spans["cancelled"].status.status_code is StatusCode.ERROR
    assert "CancelledError" in (spans["cancelled"].status.description or "")


def test_set_error_and_record_exception(netra_memory: InMemorySpanExporter) -> None:
    with Netra.start_span("handled") as span:
        try:
            raise ValueError("bad input")
        except ValueError as exc:
            span.record_exception(exc)
            span.set_error("could not parse the transcript")
    (s,) = netra_memory.get_finished_spans()
    assert s.status.status_code is StatusCode.ERROR
    assert s.status.description == "could not parse the transcript"
    assert s.events[0].name == "exception"


def test_manual_start_end_and_attributes_before_start(netra_memory: InMemorySpanExporter) -> None:
    span = Netra.start_span("manual", attributes={"a": 1})
    assert span.trace_id == ""
    span.set_attribute("b", "before-start")
    span.start()
    span.set_attribute("c", True)
    span.end()
    span.end()  # a second end is harmless
    (s,) = netra_memory.get_finished_spans()
    assert {k: (s.attributes or {})[k] for k in ("a", "b", "c")} == {"a": 1, "b": "before-start", "c": True}


def test_start_span_before_init_is_harmless() -> None:
    with Netra.start_span("nothing") as span:
        span.set_attribute("x", 1)
        span.set_usage([UsageModel("m", "chat", 1, 0.1)])
    assert span.trace_id == ""


def test_set_custom_event_on_current_span(netra_memory: InMemorySpanExporter) -> None:
    with Netra.start_span("with-event"):
        Netra.set_custom_event("cache-hit", {"key": "k1"})
    Netra.set_custom_event("no-span")  # no span: nothing happens
    (s,) = netra_memory.get_finished_spans()
    assert [e.name for e in s.events] == ["cache-hit"]
