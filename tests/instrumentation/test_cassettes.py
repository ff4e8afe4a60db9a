"""Recorded OpenAI exchanges replayed through the real ``openai`` client: each span must carry exactly
the usage the server reported, the right GenAI attributes, and price it with netra.pricing."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from netra import semconv as sc
from netra.pricing import price_tokens

from .conftest import Interaction, Traced, async_client, load_cassette, sync_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def assert_usage(span: ReadableSpan, it: Interaction) -> None:
    """Tokens on the span == the recorded usage; the cost == netra.pricing's price of those tokens."""
    usage = it.usage()
    assert usage is not None, "this cassette carries no usage"
    attrs = span.attributes or {}
    if "prompt_tokens" in usage:
        expected_in, expected_out = usage["prompt_tokens"], usage.get("completion_tokens", 0)
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    else:
        expected_in, expected_out = usage["input_tokens"], usage["output_tokens"]
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == expected_in
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == expected_out
    # detail counts are recorded when non-zero (absent reads as 0)
    assert attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0) == (cached or 0)
    assert attrs.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, 0) == (reasoning or 0)
    if reasoning:
        assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == reasoning
    assert sc.USAGE_MISSING not in attrs
    model = attrs[sc.GEN_AI_RESPONSE_MODEL]
    assert isinstance(model, str)
    cost = price_tokens(
        model,
        provider="openai",
        input_tokens=expected_in,
        output_tokens=expected_out,
        cached_input_tokens=cached or 0,
        reasoning_tokens=reasoning or 0,
    )
    if cost.cost is None:
        assert attrs[sc.COST_UNKNOWN] is True
        assert sc.COST not in attrs
    else:
        assert attrs[sc.COST] == pytest.approx(float(cost.cost))
        assert attrs[sc.COST_SOURCE] == cost.source
        assert str(attrs[sc.COST_SOURCE]).startswith(sc.COST_SOURCE_PRICE_TABLE_PREFIX)


def assert_common(span: ReadableSpan, it: Interaction, operation: str = "chat") -> None:
    attrs = span.attributes or {}
    assert span.kind is SpanKind.CLIENT
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == operation
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == it.request_body["model"]
    assert span.name == f"{operation} {it.request_body['model']}"
    assert attrs["server.address"] == "api.openai.com"
    request_id = dict((k.lower(), v) for k, v in it.headers).get("x-request-id")
    if request_id:
        assert attrs[sc.OPENAI_REQUEST_ID] == request_id


def assert_no_content(span: ReadableSpan) -> None:
    attrs = span.attributes or {}
    for key in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS):
        assert key not in attrs
    assert not span.events


def response_json(it: Interaction) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(it.body)
    return data


# -- chat completions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_chat_completion_no_content",
        "test_chat_completion_metrics",
        "test_chat_completion_extra_params",
        "test_chat_completion_handle_stop_sequences_as_string",
        "test_chat_completion_multiple_choices",
        "test_chat_completion_n_1_is_not_reported",
    ],
)
def test_chat_completion(traced: Traced, name: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    client = sync_client(replay.handler)
    completion = client.chat.completions.create(**it.request_body)
    recorded = response_json(it)
    assert completion.id == recorded["id"]

    span = traced.one()
    attrs = span.attributes or {}
    assert_common(span, it)
    assert_usage(span, it)
    assert_no_content(span)
    assert attrs[sc.SPAN_TYPE] == "generation"
    assert attrs[sc.GEN_AI_RESPONSE_ID] == recorded["id"]
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == recorded["model"]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == tuple(c["finish_reason"] for c in recorded["choices"])
    body = it.request_body
    assert attrs.get("gen_ai.request.temperature") == body.get("temperature")
    assert attrs.get("gen_ai.request.max_tokens") == body.get("max_tokens")
    assert attrs.get("gen_ai.request.seed") == body.get("seed")
    n = body.get("n")
    assert attrs.get("gen_ai.request.choice.count") == (n if n not in (None, 1) else None)
    stop = body.get("stop")
    assert attrs.get("gen_ai.request.stop_sequences") == ((stop,) if isinstance(stop, str) else None)
    if "response_format" in body:
        assert attrs["gen_ai.output.type"] == "text"
    if "service_tier" in body:
        assert attrs["openai.request.service_tier"] == body["service_tier"]
    assert attrs.get("openai.response.service_tier") == recorded.get("service_tier")
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    "name",
    [
        "test_async_chat_completion_no_content",
        "test_async_chat_completion_extra_params",
        "test_async_chat_completion_multiple_choices",
    ],
)
async def test_async_chat_completion(traced: Traced, name: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    client = async_client(replay.handler)
    completion = await client.chat.completions.create(**it.request_body)
    assert completion.id == response_json(it)["id"]
    span = traced.one()
    assert_common(span, it)
    assert_usage(span, it)
    assert_no_content(span)


def test_chat_completion_handles_not_given(traced: Traced) -> None:
    replay = load_cassette("test_chat_completion_handles_not_given")
    it = replay.interactions[0]
    client = sync_client(replay.handler)
    client.chat.completions.create(
        messages=it.request_body["messages"],
        model=it.request_body["model"],
        temperature=openai.NOT_GIVEN,
        top_p=openai.omit,
        max_tokens=openai.NOT_GIVEN,
        stop=openai.omit,
        seed=openai.NOT_GIVEN,
    )
    attrs = traced.one().attributes or {}
    for key in ("temperature", "top_p", "max_tokens", "stop_sequences", "seed", "choice.count"):
        assert f"gen_ai.request.{key}" not in attrs
    assert not any("NotGiven" in repr(v) or "Omit" in repr(v) for v in attrs.values())


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("capture", [False, True])
async def test_tool_calls(traced: Traced, is_async: bool, capture: bool) -> None:
    traced.instrument(capture_content=capture)
    name = "test_chat_completion_tool_calls_with_content"
    replay = load_cassette(("test_async_" + name[len("test_"):]) if is_async else name)
    first, second = replay.interactions
    if is_async:
        client = async_client(replay.handler)
        await client.chat.completions.create(**first.request_body)
        await client.chat.completions.create(**second.request_body)
    else:
        sclient = sync_client(replay.handler)
        sclient.chat.completions.create(**first.request_body)
        sclient.chat.completions.create(**second.request_body)
    spans = traced.spans()
    assert len(spans) == 2
    assert_usage(spans[0], first)
    assert_usage(spans[1], second)
    a0 = spans[0].attributes or {}
    assert a0[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    if not capture:
        assert_no_content(spans[0])
        assert_no_content(spans[1])
        return
    out = json.loads(str(a0[sc.GEN_AI_OUTPUT_MESSAGES]))
    recorded_calls = response_json(first)["choices"][0]["message"]["tool_calls"]
    parts = [p for p in out[0]["parts"] if p["type"] == "tool_call"]
    assert [(p["id"], p["name"], p["arguments"]) for p in parts] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in recorded_calls
    ]
    inputs = json.loads(str((spans[1].attributes or {})[sc.GEN_AI_INPUT_MESSAGES]))
    assert any(p["type"] == "tool_call_response" for m in inputs for p in m["parts"])


def test_chat_with_content(traced: Traced) -> None:
    traced.instrument(capture_content=True)
    replay = load_cassette("test_chat_completion_with_content")
    it = replay.interactions[0]
    sync_client(replay.handler).chat.completions.create(**it.request_body)
    attrs = traced.one().attributes or {}
    inputs = json.loads(str(attrs[sc.GEN_AI_INPUT_MESSAGES]))
    assert inputs == [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in it.request_body["messages"]
    ]
    outputs = json.loads(str(attrs[sc.GEN_AI_OUTPUT_MESSAGES]))
    choice = response_json(it)["choices"][0]
    assert outputs == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": choice["message"]["content"]}],
            "finish_reason": choice["finish_reason"],
        }
    ]


def test_content_is_truncated(traced: Traced) -> None:
    traced.instrument(capture_content=True, max_content_length=4)
    replay = load_cassette("test_chat_completion_with_content")
    it = replay.interactions[0]
    sync_client(replay.handler).chat.completions.create(**it.request_body)
    attrs = traced.one().attributes or {}
    inputs = json.loads(str(attrs[sc.GEN_AI_INPUT_MESSAGES]))
    text = inputs[0]["parts"][0]["content"]
    original = it.request_body["messages"][0]["content"]
    assert text.startswith(original[:4]) and "truncated" in text and original not in text


# -- streaming chat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_chat_completion_streaming",
        "test_chat_completion_multiple_choices_streaming",
        "test_chat_completion_multiple_tools_streaming_no_content",
    ],
)
@pytest.mark.parametrize("caller_sets_stream_options", [True, False])
def test_chat_streaming(traced: Traced, name: str, caller_sets_stream_options: bool) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    kwargs = dict(it.request_body)
    if not caller_sets_stream_options:
        del kwargs["stream_options"]
    stream = sync_client(replay.handler).chat.completions.create(**kwargs)
    chunks = list(stream)

    recorded = it.events()
    # what the caller sees: every recorded chunk, except our own usage-only chunk when we asked for it
    visible = recorded if caller_sets_stream_options else [e for e in recorded if e.get("choices")]
    assert [c.to_dict() for c in chunks] == [
        {k: v for k, v in e.items() if caller_sets_stream_options or k != "usage"} for e in visible
    ]
    # we asked for usage only when the caller had not decided
    assert replay.sent_json()["stream_options"] == {"include_usage": True}

    span = traced.one()
    attrs = span.attributes or {}
    assert_common(span, it)
    assert_usage(span, it)
    assert_no_content(span)
    assert attrs[sc.STREAM_OUTCOME] == "completed"
    assert attrs["gen_ai.request.stream"] is True
    assert attrs[sc.GEN_AI_RESPONSE_ID] == recorded[0]["id"]
    n = it.request_body.get("n", 1)
    reasons = {c["index"]: c["finish_reason"] for e in recorded for c in e["choices"] if c.get("finish_reason")}
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == tuple(reasons[i] for i in range(n))
    assert float(attrs["gen_ai.response.time_to_first_chunk"]) >= 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "test_async_chat_completion_streaming",
        "test_async_chat_completion_multiple_choices_streaming",
        "test_async_chat_completion_multiple_tools_streaming_with_content",
    ],
)
async def test_async_chat_streaming(traced: Traced, name: str) -> None:
    traced.instrument(capture_content=True)
    replay = load_cassette(name)
    it = replay.interactions[0]
    kwargs = {k: v for k, v in it.request_body.items() if k != "stream_options"}
    stream = await async_client(replay.handler).chat.completions.create(**kwargs)
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)  # the usage-only chunk stayed hidden
    span = traced.one()
    assert_usage(span, it)
    attrs = span.attributes or {}
    assert attrs[sc.STREAM_OUTCOME] == "completed"
    outputs = json.loads(str(attrs[sc.GEN_AI_OUTPUT_MESSAGES]))
    for message in outputs:
        index = outputs.index(message)
        text = "".join(
            c["delta"].get("content") or ""
            for e in it.events()
            for c in e["choices"]
            if c["index"] == index
        )
        got = "".join(p.get("content", "") for p in message["parts"] if p["type"] == "text")
        assert got == text
    if "tools" in it.request_body:
        calls = [p for m in outputs for p in m["parts"] if p["type"] == "tool_call"]
        assert calls and all(json.loads(p["arguments"]) for p in calls)


@pytest.mark.parametrize("name", ["test_chat_completion_streaming_not_complete"])
def test_stream_without_usage_says_so(traced: Traced, name: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    chunks = list(sync_client(replay.handler).chat.completions.create(**it.request_body))
    assert len(chunks) == len(it.events())
    attrs = traced.one().attributes or {}
    assert attrs[sc.USAGE_MISSING] is True
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs and sc.COST not in attrs


def test_stream_usage_request_can_be_turned_off(traced: Traced) -> None:
    traced.instrument(request_stream_usage=False)
    replay = load_cassette("test_chat_completion_streaming_not_complete")
    list(sync_client(replay.handler).chat.completions.create(**replay.interactions[0].request_body))
    assert "stream_options" not in replay.sent_json()
    assert (traced.one().attributes or {})[sc.USAGE_MISSING] is True


def test_caller_stream_options_are_respected(traced: Traced) -> None:
    replay = load_cassette("test_chat_completion_streaming_not_complete")
    body = dict(replay.interactions[0].request_body, stream_options={"include_usage": False})
    list(sync_client(replay.handler).chat.completions.create(**body))
    assert replay.sent_json()["stream_options"] == {"include_usage": False}


def test_streaming_with_context_manager(traced: Traced) -> None:
    replay = load_cassette("test_chat_completion_with_context_manager_streaming")
    it = replay.interactions[0]
    with sync_client(replay.handler).chat.completions.create(**it.request_body) as stream:
        for _ in stream:
            pass
    span = traced.one()
    assert_usage(span, it)
    assert (span.attributes or {})[sc.STREAM_OUTCOME] == "completed"


# -- raw responses ----------------------------------------------------------------------------------------


def test_with_raw_response(traced: Traced) -> None:
    replay = load_cassette("test_chat_completion_with_raw_response")
    it = replay.interactions[0]
    raw = sync_client(replay.handler).chat.completions.with_raw_response.create(**it.request_body)
    span = traced.one()  # ended when the call returned: the body was already read
    assert_usage(span, it)
    assert raw.headers.get("x-request-id") == (span.attributes or {})[sc.OPENAI_REQUEST_ID]
    completion = raw.parse()
    assert completion.id == response_json(it)["id"]
    assert raw.parse() is completion


async def test_async_with_raw_response(traced: Traced) -> None:
    replay = load_cassette("test_async_chat_completion_with_raw_response")
    it = replay.interactions[0]
    raw = await async_client(replay.handler).chat.completions.with_raw_response.create(**it.request_body)
    assert_usage(traced.one(), it)
    assert raw.parse().id == response_json(it)["id"]


def test_with_raw_response_streaming(traced: Traced) -> None:
    replay = load_cassette("test_chat_completion_with_raw_response_streaming")
    it = replay.interactions[0]
    raw = sync_client(replay.handler).chat.completions.with_raw_response.create(**it.request_body)
    assert traced.spans() == []  # the stream has not been read yet
    assert raw.http_response.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    chunks = list(stream)
    assert len(chunks) == len(it.events())  # the caller set stream_options: usage chunk is theirs
    span = traced.one()
    assert_usage(span, it)
    assert (span.attributes or {})[sc.STREAM_OUTCOME] == "completed"


# -- embeddings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_embeddings_no_content",
        "test_embeddings_token_metrics",
        "test_embeddings_with_batch_input",
        "test_embeddings_with_dimensions",
        "test_embeddings_with_encoding_format",
        "test_embeddings_with_not_given_values",
        "test_async_embeddings_with_batch_input",
        "test_async_embeddings_with_dimensions",
    ],
)
async def test_embeddings(traced: Traced, name: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    if "async" in name:
        result = await async_client(replay.handler).embeddings.create(**it.request_body)
    else:
        result = sync_client(replay.handler).embeddings.create(**it.request_body)
    assert len(result.data) == len(response_json(it)["data"])
    span = traced.one()
    attrs = span.attributes or {}
    assert_common(span, it, operation="embeddings")
    assert attrs[sc.SPAN_TYPE] == "embedding"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == it.usage()["prompt_tokens"]  # type: ignore[index]
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 0
    cost = price_tokens(str(attrs[sc.GEN_AI_RESPONSE_MODEL]), input_tokens=it.usage()["prompt_tokens"])  # type: ignore[index]
    assert cost.cost is not None and attrs[sc.COST] == pytest.approx(float(cost.cost))
    body = it.request_body
    assert attrs.get("gen_ai.embeddings.dimension.count") == body.get("dimensions")
    fmt = body.get("encoding_format")
    assert attrs.get("gen_ai.request.encoding_formats") == ((fmt,) if fmt else None)
    assert_no_content(span)


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("test_chat_completion_404", "chat"),
        ("test_async_chat_completion_404", "chat"),
        ("test_embeddings_model_not_found", "embeddings"),
        ("test_async_embeddings_error_handling", "embeddings"),
        ("test_responses_create_api_errorcontent_mode0", "responses"),
    ],
)
async def test_api_errors(traced: Traced, name: str, call: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    is_async = "async" in name
    client: Any = async_client(replay.handler) if is_async else sync_client(replay.handler)
    resource = {"chat": client.chat.completions, "embeddings": client.embeddings, "responses": client.responses}[call]
    with pytest.raises(openai.APIStatusError) as info:
        result = resource.create(**it.request_body)
        if is_async:
            await result
    exc = info.value
    assert exc.status_code == it.status
    assert exc.body == response_json(it)["error"]  # the user gets the exception unchanged
    span = traced.one()
    attrs = span.attributes or {}
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == type(exc).__qualname__
    assert [e.name for e in span.events] == ["exception"]
    assert (span.events[0].attributes or {})["exception.type"].endswith(type(exc).__name__)  # type: ignore[union-attr]
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs and sc.COST not in attrs and sc.USAGE_MISSING not in attrs
    if exc.request_id:
        assert attrs[sc.OPENAI_REQUEST_ID] == exc.request_id


# -- the Responses API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_responses_create_basiccontent_mode0",
        "test_responses_create_aggregates_cache_tokenscontent_mode0",
        "test_responses_create_reports_reasoning_tokenscontent_mode0",
        "test_responses_create_token_usagecontent_mode0",
        "test_responses_create_with_all_paramscontent_mode0",
        "test_responses_create_stop_reasoncontent_mode0",
        "test_responses_create_captures_tool_call_contentcontent_mode0",
    ],
)
def test_responses(traced: Traced, name: str) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    response = sync_client(replay.handler).responses.create(**it.request_body)
    recorded = response_json(it)
    assert response.id == recorded["id"]
    span = traced.one()
    attrs = span.attributes or {}
    assert_common(span, it)
    assert_usage(span, it)
    assert_no_content(span)
    assert attrs[sc.GEN_AI_RESPONSE_ID] == recorded["id"]
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == recorded["model"]
    has_call = any(o["type"] == "function_call" for o in recorded["output"])
    expected_reason = {"completed": "tool_calls" if has_call else "stop", "incomplete": "length"}[recorded["status"]]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (expected_reason,)
    body = it.request_body
    assert attrs.get("gen_ai.request.max_tokens") == body.get("max_output_tokens")
    assert attrs.get("gen_ai.request.temperature") == body.get("temperature")
    assert attrs.get("gen_ai.request.top_p") == body.get("top_p")


def test_responses_reasoning_tokens_are_recorded(traced: Traced) -> None:
    replay = load_cassette("test_responses_create_reports_reasoning_tokenscontent_mode0")
    sync_client(replay.handler).responses.create(**replay.interactions[0].request_body)
    attrs = traced.one().attributes or {}
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 9


def test_responses_content(traced: Traced) -> None:
    traced.instrument(capture_content=True)
    replay = load_cassette("test_responses_create_captures_contentcontent_mode0")
    it = replay.interactions[0]
    sync_client(replay.handler).responses.create(**it.request_body)
    attrs = traced.one().attributes or {}
    system = json.loads(str(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]))
    assert system == [{"type": "text", "content": it.request_body["instructions"]}]
    inputs = json.loads(str(attrs[sc.GEN_AI_INPUT_MESSAGES]))
    assert inputs[0]["parts"][0]["content"] == it.request_body["input"]
    outputs = json.loads(str(attrs[sc.GEN_AI_OUTPUT_MESSAGES]))
    text = response_json(it)["output"][0]["content"][0]["text"]
    assert outputs[0]["parts"] == [{"type": "text", "content": text}]


@pytest.mark.parametrize(
    "name",
    [
        "test_responses_create_streamingcontent_mode0",
        "test_responses_create_streaming_aggregates_cache_tokenscontent_mode0",
        "test_responses_create_streaming_iterationcontent_mode0",
        "test_responses_create_streaming_delegates_response_attributecontent_mode0",
    ],
)
@pytest.mark.parametrize("is_async", [False, True])
async def test_responses_streaming(traced: Traced, name: str, is_async: bool) -> None:
    replay = load_cassette(name)
    it = replay.interactions[0]
    if is_async:
        stream: Any = await async_client(replay.handler).responses.create(**it.request_body)
        events = [e async for e in stream]
    else:
        events = list(sync_client(replay.handler).responses.create(**it.request_body))
    assert [e.type for e in events] == [e["type"] for e in it.events()]
    span = traced.one()
    attrs = span.attributes or {}
    assert_common(span, it)
    assert_usage(span, it)
    assert attrs[sc.STREAM_OUTCOME] == "completed"
    completed = [e for e in it.events() if e["type"] == "response.completed"][0]["response"]
    assert attrs[sc.GEN_AI_RESPONSE_ID] == completed["id"]
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs.get("openai.request.service_tier") == it.request_body.get("service_tier")


def test_responses_stream_helper(traced: Traced) -> None:
    """``responses.stream()`` (the helper with a manager) ends the span when its ``with`` ends."""
    replay = load_cassette("test_responses_create_streaming_captures_contentcontent_mode0")
    it = replay.interactions[0]
    body = {k: v for k, v in it.request_body.items() if k != "stream"}
    with sync_client(replay.handler).responses.stream(**body) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    span = traced.one()
    assert_usage(span, it)
    assert (span.attributes or {})[sc.GEN_AI_RESPONSE_ID] == final.id
