"""Coverage of clients and providers, uninstrument, costs, content capture and "never harm the host"."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import openai
import pydantic
import pytest
import wrapt
from netra_instrumentation_openai import OpenAIInstrumentor, _calls
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from netra import semconv as sc
from netra.pricing import price_tokens

from . import canned
from .conftest import Traced, async_client, sync_client

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "the secret prompt"}]}


def test_clients_made_before_and_after_instrument(traced: Traced) -> None:
    OpenAIInstrumentor().uninstrument()
    before = sync_client(canned.answer)
    before.chat.completions.create(**CHAT)
    assert traced.spans() == []
    traced.instrument()
    after = sync_client(canned.answer)
    before.chat.completions.create(**CHAT)
    after.chat.completions.create(**CHAT)
    assert len(traced.spans()) == 2


def test_uninstrument_removes_every_patch(traced: Traced) -> None:
    from openai._base_client import AsyncAPIClient, SyncAPIClient
    from openai._response import APIResponse
    from openai._streaming import AsyncStream, Stream

    def attributes() -> list[Any]:
        return [
            SyncAPIClient.__dict__["request"],
            AsyncAPIClient.__dict__["request"],
            SyncAPIClient.__dict__["_process_response"],
            AsyncAPIClient.__dict__["_process_response"],
            Stream.__dict__["__iter__"],
            AsyncStream.__dict__["__aiter__"],
            APIResponse.__dict__["read"],
        ]

    assert all(isinstance(p, wrapt.FunctionWrapper) for p in attributes())
    OpenAIInstrumentor().uninstrument()
    assert not any(isinstance(p, wrapt.ObjectProxy) for p in attributes())
    client = sync_client(canned.answer)
    client.chat.completions.create(**CHAT)
    list(client.chat.completions.create(**CHAT, stream=True))
    assert traced.spans() == []
    traced.instrument()  # and it can come back
    client.chat.completions.create(**CHAT)
    assert len(traced.spans()) == 1


def test_azure_client(traced: Traced) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)  # Azure answers with the model behind the deployment
        return canned.respond(json_body=canned.chat_completion(model="gpt-4o-mini-2024-07-18"))

    client = openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://contoso.openai.azure.com",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    client.chat.completions.create(**{**CHAT, "model": "prod-gpt4o-mini"})
    assert "/openai/deployments/prod-gpt4o-mini/chat/completions" in str(seen[0].url)
    attrs = traced.one().attributes or {}
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert attrs["server.address"] == "contoso.openai.azure.com"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "prod-gpt4o-mini"  # the deployment
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"  # priced by the model that answered
    assert sc.COST in attrs


async def test_async_azure_and_compatible_base_url(traced: Traced) -> None:
    client = openai.AsyncAzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://contoso.openai.azure.com",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(canned.answer)),
    )
    await client.embeddings.create(model="text-embedding-3-small", input="x")
    local = async_client(canned.answer, base_url="http://localhost:8080/v1")
    await local.chat.completions.create(**{**CHAT, "model": "my-local-llama"})
    azure, compat = traced.spans()
    assert (azure.attributes or {})[sc.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    attrs = compat.attributes or {}
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert (attrs["server.address"], attrs["server.port"]) == ("localhost", 8080)
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "my-local-llama"
    assert attrs[sc.COST_UNKNOWN] is True and sc.COST not in attrs  # never a cost of 0 for an unknown price


def test_retries_are_counted(traced: Traced) -> None:
    attempts: list[int] = []

    def flaky(request: httpx2.Request) -> httpx2.Response:
        attempts.append(1)
        if len(attempts) < 3:
            return canned.respond(500, {"retry-after-ms": "1"}, json_body={"error": {"message": "try again"}})
        return canned.answer(request)

    client = sync_client(flaky, max_retries=3)
    client.chat.completions.create(**CHAT)
    assert len(attempts) == 3
    attrs = traced.one().attributes or {}
    assert attrs["http.request.resend_count"] == 2
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == canned.USAGE["prompt_tokens"]


def test_cached_and_reasoning_tokens_are_priced(traced: Traced) -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 200, "audio_tokens": 0},
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body=canned.chat_completion(model="o4-mini", usage=usage))

    sync_client(handler).chat.completions.create(**{**CHAT, "model": "o4-mini"})
    attrs = traced.one().attributes or {}
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1536
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 200
    expected = price_tokens("o4-mini", input_tokens=2000, output_tokens=300, cached_input_tokens=1536, reasoning_tokens=200)
    without_cache = price_tokens("o4-mini", input_tokens=2000, output_tokens=300)
    assert expected.cost is not None and without_cache.cost is not None and expected.cost < without_cache.cost
    assert attrs[sc.COST] == pytest.approx(float(expected.cost))


def test_provider_reported_cost_wins(traced: Traced) -> None:
    usage = dict(canned.USAGE, cost=0.0123)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return canned.respond(json_body=canned.chat_completion(usage=usage))

    sync_client(handler, base_url="https://openrouter.ai/api/v1").chat.completions.create(**CHAT)
    attrs = traced.one().attributes or {}
    assert attrs[sc.COST] == 0.0123
    assert attrs[sc.COST_SOURCE] == "provider"


def test_cost_can_be_switched_off(traced: Traced) -> None:
    traced.instrument(record_cost=False)
    sync_client(canned.answer).chat.completions.create(**CHAT)
    attrs = traced.one().attributes or {}
    assert sc.COST not in attrs and sc.COST_UNKNOWN not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == canned.USAGE["prompt_tokens"]


def test_length_finish_reason_in_parse_keeps_the_billed_usage(traced: Traced) -> None:
    class Answer(pydantic.BaseModel):
        answer: str

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = canned.chat_completion(content='{"answer": "ye')
        body["choices"][0]["finish_reason"] = "length"
        return canned.respond(json_body=body)

    with pytest.raises(openai.LengthFinishReasonError):
        sync_client(handler).chat.completions.parse(**CHAT, response_format=Answer)
    span = traced.one()
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == "LengthFinishReasonError"
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == canned.USAGE["completion_tokens"]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)


def _all_text(traced: Traced) -> str:
    out = []
    for span in traced.spans():
        out.append(json.dumps({k: str(v) for k, v in (span.attributes or {}).items()}))
        for event in span.events:
            out.append(json.dumps({k: str(v) for k, v in (event.attributes or {}).items()}))
    return "\n".join(out)


async def test_content_off_means_none_anywhere(traced: Traced) -> None:
    client = sync_client(canned.answer)
    client.chat.completions.create(**CHAT)
    list(client.chat.completions.create(**CHAT, stream=True))
    client.responses.create(model="gpt-4o-mini", input="the secret prompt", instructions="the secret system")
    client.embeddings.create(model="text-embedding-3-small", input="the secret prompt")
    await async_client(canned.answer).chat.completions.create(**CHAT)
    text = _all_text(traced)
    assert len(traced.spans()) == 5
    for secret in ("the secret", "Hello there", "Hi!", "w0 "):
        assert secret not in text


def test_content_on_from_the_environment(traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    traced.instrument()
    client = sync_client(canned.answer)
    list(client.chat.completions.create(**CHAT, stream=True))
    attrs = traced.one().attributes or {}
    assert "the secret prompt" in str(attrs[sc.GEN_AI_INPUT_MESSAGES])
    output = json.loads(str(attrs[sc.GEN_AI_OUTPUT_MESSAGES]))
    assert output[0]["parts"][0]["content"] == "".join(f"w{i} " for i in range(5))


def test_span_is_current_during_the_request_and_a_child_of_the_caller(traced: Traced) -> None:
    seen: list[trace.Span] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(trace.get_current_span())
        return canned.answer(request)

    tracer = traced.provider.get_tracer("app")
    with tracer.start_as_current_span("request-handler") as parent:
        sync_client(handler).chat.completions.create(**CHAT)
        assert trace.get_current_span() is parent
    spans = {s.name: s for s in traced.spans()}
    child = spans["chat gpt-4o-mini"]
    assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id
    assert seen[0].get_span_context().span_id == child.context.span_id


def test_unsampled_calls_do_nothing_extra() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        sent: list[dict[str, Any]] = []

        def handler(request: httpx2.Request) -> httpx2.Response:
            sent.append(json.loads(request.content))
            return canned.answer(request)

        chunks = list(sync_client(handler).chat.completions.create(**CHAT, stream=True))
        assert chunks and "stream_options" not in sent[0]  # no usage request for a span nobody records
        assert exporter.get_finished_spans() == ()
    finally:
        OpenAIInstrumentor().uninstrument()


def test_instrumentation_failures_never_reach_the_caller(
    traced: Traced, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in the instrumentation")

    monkeypatch.setattr(_calls, "response_attributes", broken)
    monkeypatch.setattr(_calls, "request_attributes", broken)
    caplog.set_level(logging.WARNING, logger="netra_instrumentation_openai")
    client = sync_client(canned.answer)
    for _ in range(3):
        completion = client.chat.completions.create(**CHAT)
        assert completion.choices[0].message.content == "Hello there"
    assert len(list(client.chat.completions.create(**CHAT, stream=True))) == len(canned.chat_chunks(include_usage=False))
    ours = [r for r in caplog.records if r.name == "netra_instrumentation_openai"]
    assert len(ours) == 1  # logged once
    assert "bug in the instrumentation" in ours[0].getMessage()


def test_broken_chunk_reader_keeps_the_stream_intact(
    traced: Traced, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from netra_instrumentation_openai import _streams

    def broken(self: Any, chunk: Any) -> bool:
        raise RuntimeError("chunk reader bug")

    monkeypatch.setattr(_streams.StreamState, "_on_choices_chunk", broken)
    caplog.set_level(logging.WARNING, logger="netra_instrumentation_openai")
    chunks = list(sync_client(canned.answer).chat.completions.create(**CHAT, stream=True))
    assert [c.choices[0].delta.content for c in chunks if c.choices][1] == "w0 "
    attrs = traced.one().attributes or {}
    assert attrs[sc.STREAM_OUTCOME] == "completed"
    assert len([r for r in caplog.records if "chunk reader bug" in r.getMessage()]) == 1


def test_other_routes_are_left_alone(traced: Traced) -> None:
    client = sync_client(canned.answer)
    client.models.list()
    assert traced.spans() == []
