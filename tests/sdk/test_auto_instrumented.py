"""Netra.init(instruments={InstrumentSet.OPENAI}): a real openai client (the model behind it simulated by
httpx2.MockTransport) traced by our instrumentation, exported over real OTLP/HTTP to a local receiver."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import openai
import pytest

from netra import Netra, UsageModel, semconv
from netra.instrumentation import instruments
from netra.instrumentation.instruments import InstrumentSet

from .otlp_receiver import attributes, otlp_receiver

PROMPT = "Summarise the Apex Legal board meeting"
ANSWER = "The board approved the merger."


def fake_model(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    assert body["model"] == "gpt-4o-mini"
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 380, "total_tokens": 1580},
        },
    )


def _client() -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url="http://llm.invalid/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(fake_model)))


@pytest.mark.parametrize("trace_content", [True, False])
def test_openai_span_round_trip(trace_content: bool) -> None:
    with otlp_receiver() as receiver:
        Netra.init(app_name="meetingmind", endpoint=receiver.url, api_key="k", trace_content=trace_content,
                   instruments={InstrumentSet.OPENAI})
        client = _client()
        with Netra.context(tenant_id="apex-legal", session_id="s-9", user_id="john@apex.example"), \
                Netra.start_span("meeting-summarization") as span:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
            span.set_usage([UsageModel("gpt-4o-mini", "chat", 1580, 0.0004)])
        assert reply.choices[0].message.content == ANSWER
        Netra.shutdown()
        raw = b"".join(r.request.SerializeToString() for r in receiver.received)
        spans = {s.name: (attributes(s.attributes), s) for _, s in receiver.spans()}

    llm_name = next(n for n in spans if n != "meeting-summarization")
    llm_attrs, llm_span = spans[llm_name]
    assert llm_attrs[semconv.TENANT_ID] == "apex-legal"
    assert llm_attrs[semconv.SESSION_ID] == "s-9"
    assert llm_attrs[semconv.USER_ID] == "john@apex.example"
    assert llm_attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert llm_attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 380
    parent_attrs, parent_span = spans["meeting-summarization"]
    assert llm_span.parent_span_id == parent_span.span_id
    assert parent_attrs[semconv.USAGE_COVERED] is True
    assert semconv.USAGE_COVERED not in llm_attrs
    if trace_content:
        assert PROMPT.encode() in raw and ANSWER.encode() in raw
    else:
        assert PROMPT.encode() not in raw and ANSWER.encode() not in raw


def test_instrumentation_is_switched_off_by_shutdown() -> None:
    from netra_instrumentation_openai import OpenAIInstrumentor

    Netra.init(span_exporter=_memory(), disable_batch=True, instruments={InstrumentSet.OPENAI})
    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    Netra.shutdown()
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    Netra.init(span_exporter=_memory(), disable_batch=True)  # None: every installed instrumentation
    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    Netra.shutdown()
    Netra.init(span_exporter=_memory(), disable_batch=True, block_instruments={InstrumentSet.OPENAI})
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    Netra.shutdown()


def test_missing_library_and_unknown_names_warn(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(instruments._SPECS, "notalib", instruments._Spec("notalib_xyz_missing", "x", "X", "notalib"))
    caplog.set_level(logging.WARNING, logger="netra")
    assert instruments.instrument(["notalib", "nonsense"]) == []
    assert "pip install 'netra[notalib]'" in caplog.text
    assert "unknown instrument 'nonsense'" in caplog.text
    caplog.clear()
    assert instruments.instrument(None, blocked=["openai"]) == []  # implicit: a missing library is silent
    assert "notalib" not in caplog.text


def _memory() -> Any:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()
