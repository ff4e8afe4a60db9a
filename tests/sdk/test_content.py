"""trace_content=False: no prompt or completion text leaves the process."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra, config, semconv

SECRET = "the merger closes on Friday"


def _emit_content_spans() -> None:
    with Netra.start_span("generation") as span:
        span.set_prompt(SECRET)
        span.set_model("gpt-4o-mini")
    with trace.get_tracer("some.instrumentation").start_as_current_span("chat") as s:
        s.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, json.dumps([{"role": "user", "content": SECRET}]))
        s.set_attribute(semconv.GEN_AI_OUTPUT_MESSAGES, json.dumps([{"role": "assistant", "content": SECRET}]))
        s.set_attribute(semconv.GEN_AI_SYSTEM_INSTRUCTIONS, SECRET)
        s.set_attribute("gen_ai.prompt.0.content", SECRET)
        s.set_attribute("gen_ai.completion.0.content", SECRET)
        s.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, 12)
        s.add_event("gen_ai.choice", {"gen_ai.output.messages": SECRET, "index": 0})


def _dump(exporter: InMemorySpanExporter) -> str:
    parts = []
    for s in exporter.get_finished_spans():
        parts.append(json.dumps(dict(s.attributes or {})))
        parts.extend(json.dumps(dict(e.attributes or {})) for e in s.events)
    return "\n".join(parts)


def test_trace_content_false_keeps_text_in_process(memory_exporter: InMemorySpanExporter) -> None:
    Netra.init(trace_content=False, span_exporter=memory_exporter, disable_batch=True, instruments=set())
    assert config.trace_content_enabled(default=True) is False
    _emit_content_spans()
    Netra.shutdown()
    dump = _dump(memory_exporter)
    assert SECRET not in dump
    chat = next(s for s in memory_exporter.get_finished_spans() if s.name == "chat")
    assert (chat.attributes or {})[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12  # numbers stay
    assert dict(chat.events[0].attributes or {}) == {"index": 0}
    gen = next(s for s in memory_exporter.get_finished_spans() if s.name == "generation")
    assert (gen.attributes or {})[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"


def test_trace_content_true_records_truncated_text(memory_exporter: InMemorySpanExporter) -> None:
    Netra.init(trace_content=True, max_content_length=10, span_exporter=memory_exporter, disable_batch=True,
               instruments=set())
    assert config.trace_content_enabled(default=False) is True and config.max_content_length() == 10
    _emit_content_spans()
    Netra.shutdown()
    gen = next(s for s in memory_exporter.get_finished_spans() if s.name == "generation")
    recorded = json.loads(str((gen.attributes or {})[semconv.GEN_AI_INPUT_MESSAGES]))
    assert recorded[0]["parts"][0]["content"].startswith(SECRET[:10])
    assert "truncated" in recorded[0]["parts"][0]["content"]
    chat = next(s for s in memory_exporter.get_finished_spans() if s.name == "chat")
    assert SECRET in str((chat.attributes or {})[semconv.GEN_AI_SYSTEM_INSTRUCTIONS])


def test_netra_trace_content_env(monkeypatch: pytest.MonkeyPatch, memory_exporter: InMemorySpanExporter) -> None:
    monkeypatch.setenv("NETRA_TRACE_CONTENT", "false")
    Netra.init(span_exporter=memory_exporter, disable_batch=True, instruments=set())
    _emit_content_spans()
    Netra.shutdown()
    assert SECRET not in _dump(memory_exporter)
