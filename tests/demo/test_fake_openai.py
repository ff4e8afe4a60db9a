"""The local OpenAI-compatible endpoint, driven by the real ``openai`` client over real HTTP."""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from netra_server.demo.fake_openai import (
    FakeOpenAIConfig,
    FakeOpenAIServer,
    count_message_tokens,
    count_tokens,
    tokenize,
)
from netra_server.testing import free_port

MEETING_PROMPT = [
    {
        "role": "system",
        "content": "Summarize the meeting transcript. Include key decisions, action items and risks.",
    },
    {
        "role": "user",
        "content": "Priya: The vendor contract renewal is due in March.\n"
        "Marcus: Legal flagged the indemnity clause.\nPriya: Then we escalate the clause to procurement.",
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0)) as srv:
        yield srv


@pytest.fixture
def client(server: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-local-test", max_retries=0)


def test_tokenizer_round_trips_and_counts_about_four_chars_per_token() -> None:
    text = (
        "The quarterly infrastructure review covered the migration of billing services, "
        "the 2025 budget (USD 1,250,000) and on-call rotations."
    )
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert count_tokens(text) == len(pieces)
    assert 3.0 <= len(text) / len(pieces) <= 5.5
    assert tokenize("") == []


def test_plain_completion_has_openai_shape_and_exact_usage(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["openai-version"] == "2020-10-01"
    resp = raw.parse()
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-4o-mini-2024-07-18"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content or ""
    for section in ("Summary:", "Key decisions:", "Action items:", "Risks:"):
        assert section in content
    assert "Sentiment" not in content  # only what the prompt asked for
    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens == count_message_tokens(MEETING_PROMPT)
    assert usage.completion_tokens == count_tokens(content)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_output_is_deterministic_and_depends_on_the_request(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model="gpt-4o", messages=MEETING_PROMPT)
    b = client.chat.completions.create(model="gpt-4o", messages=MEETING_PROMPT)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage == b.usage
    assert a.id != b.id
    other = [MEETING_PROMPT[0], {"role": "user", "content": "Dana: Hiring plan for the data platform team."}]
    c = client.chat.completions.create(model="gpt-4o", messages=other)
    assert c.choices[0].message.content != a.choices[0].message.content


def test_streaming_with_include_usage_ends_with_a_usage_only_chunk(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MEETING_PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage == plain.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len({c.id for c in chunks}) == 1
    assert {c.model for c in chunks} == {"gpt-4o-mini-2024-07-18"}


def test_streaming_without_include_usage_reports_no_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT, stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_options_without_stream_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MEETING_PROMPT, stream_options={"include_usage": True}
        )
    assert info.value.status_code == 400
    assert info.value.param == "stream_options"
    assert info.value.request_id and info.value.request_id.startswith("req_")


def test_max_tokens_truncates_with_finish_reason_length(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT, max_tokens=7)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 7


def test_multiple_choices_stream_interleaved(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT, n=2)
    assert [c.index for c in plain.choices] == [0, 1]
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MEETING_PROMPT, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts = {0: "", 1: ""}
    usage = None
    for chunk in stream:
        for ch in chunk.choices:
            texts[ch.index] += ch.delta.content or ""
        usage = chunk.usage or usage
    assert texts[0] == plain.choices[0].message.content
    assert texts[1] == plain.choices[1].message.content
    assert usage == plain.usage


def test_reasoning_model_reports_reasoning_tokens(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-5-mini", messages=MEETING_PROMPT)
    assert resp.usage is not None and resp.usage.completion_tokens_details is not None
    reasoning = resp.usage.completion_tokens_details.reasoning_tokens or 0
    assert reasoning > 0
    assert resp.usage.completion_tokens == reasoning + count_tokens(resp.choices[0].message.content or "")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5-mini", messages=MEETING_PROMPT, max_tokens=10)
    assert info.value.code == "unsupported_parameter"


def test_long_prompts_are_cached_in_128_token_steps(client: openai.OpenAI) -> None:
    long_context = " ".join(f"clause{i} covers indemnity and liability for party{i % 7}." for i in range(400))
    messages = [{"role": "system", "content": long_context}, {"role": "user", "content": "Summarize it."}]
    first = client.chat.completions.create(model="gpt-4.1-mini", messages=messages)
    assert first.usage is not None and first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    messages[1]["content"] = "List the parties."
    second = client.chat.completions.create(model="gpt-4.1-mini", messages=messages)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024 and (cached - 1024) % 128 == 0
    assert cached < second.usage.prompt_tokens


def test_tool_calls_and_json_output(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "create_ticket",
                "parameters": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "priority": {"enum": ["high", "low"]}},
                    "required": ["title", "priority"],
                },
            },
        }
    ]
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT, tools=tools)  # type: ignore[arg-type]
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "create_ticket"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert set(args) == {"title", "priority"} and args["priority"] == "high"
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MEETING_PROMPT, tools=tools, stream=True  # type: ignore[arg-type]
    )
    arguments = ""
    name = None
    for chunk in stream:
        for ch in chunk.choices:
            for tc in ch.delta.tool_calls or []:
                name = name or (tc.function.name if tc.function else None)
                arguments += (tc.function.arguments or "") if tc.function else ""
    assert name == "create_ticket"
    assert set(json.loads(arguments)) == {"title", "priority"}

    js = client.chat.completions.create(
        model="gpt-4o-mini", messages=MEETING_PROMPT, response_format={"type": "json_object"}
    )
    parsed = json.loads(js.choices[0].message.content or "")
    assert {"summary", "key_decisions", "action_items", "risks"} <= set(parsed)


def test_embeddings_float_base64_dimensions_and_similarity(client: openai.OpenAI) -> None:
    texts = ["vendor contract renewal", "renewal of the vendor contract", "pizza recipe with basil"]
    resp = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert resp.model == "text-embedding-3-small"
    assert [d.index for d in resp.data] == [0, 1, 2]
    vecs = [d.embedding for d in resp.data]
    assert all(len(v) == 1536 for v in vecs)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vecs)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]) + 0.3
    assert resp.usage.prompt_tokens == sum(count_tokens(t) for t in texts) == resp.usage.total_tokens

    again = client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    assert again.data[0].embedding == vecs[0]

    small = client.embeddings.create(model="text-embedding-3-large", input="x y z", dimensions=256)
    assert len(small.data[0].embedding) == 256

    raw = httpx.post(
        f"{client.base_url}embeddings",
        json={"model": "text-embedding-3-small", "input": texts[0], "encoding_format": "base64"},
        headers={"Authorization": "Bearer sk-local-test"},
    )
    packed = base64.b64decode(raw.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert len(decoded) == 1536
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(decoded, vecs[0], strict=True))

    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=10)


def test_unknown_model_is_a_404_with_openai_error_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="this-model-does-not-exist", messages=MEETING_PROMPT)
    assert info.value.code == "model_not_found"
    assert info.value.body == {
        "message": "The model `this-model-does-not-exist` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedding", input="x")


def test_bad_requests_are_400s(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert info.value.param == "messages"
    raw = httpx.post(
        f"{client.base_url}chat/completions",
        content=b"{not json",
        headers={"Authorization": "Bearer sk", "content-type": "application/json"},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.post(f"{client.base_url}chat/completions", json={"model": "gpt-4o-mini"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    nowhere = httpx.get(f"{client.base_url}nowhere")
    assert nowhere.status_code == 404
    assert nowhere.json()["error"]["message"] == "Invalid URL (GET /v1/nowhere)"


def test_injected_errors_reach_the_client_error_types(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MEETING_PROMPT, extra_headers={"x-fake-openai-error": "500"}
        )
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MEETING_PROMPT, extra_headers={"x-fake-openai-error": "429"}
        )
    assert info.value.response.headers["retry-after"] == "1"


def test_api_key_and_rate_limit_are_enforced_when_configured() -> None:
    config = FakeOpenAIConfig(latency_scale=0, api_key="sk-right", requests_per_minute=2)
    with FakeOpenAIServer(config=config) as srv:
        wrong = openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong-key-123", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            wrong.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
        assert info.value.code == "invalid_api_key"
        assert "sk-wrong-key-123" not in str(info.value)
        right = openai.OpenAI(base_url=srv.base_url, api_key="sk-right", max_retries=0)
        right.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
        right.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
        with pytest.raises(openai.RateLimitError) as limited:
            right.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
        assert limited.value.code == "rate_limit_exceeded"
        assert int(limited.value.response.headers["retry-after"]) >= 1
        assert srv.stats()["errors"] == {"401": 1, "429": 1}


def test_models_route_and_stats(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o-mini-2024-07-18").id == "gpt-4o-mini-2024-07-18"
    before = server.stats()["models"].get("gpt-4.1-nano-2025-04-14", {"requests": 0, "prompt_tokens": 0})
    resp = client.chat.completions.create(model="gpt-4.1-nano", messages=MEETING_PROMPT)
    after = server.stats()["models"]["gpt-4.1-nano-2025-04-14"]
    assert resp.usage is not None
    assert after["requests"] == before["requests"] + 1
    assert after["prompt_tokens"] == before["prompt_tokens"] + resp.usage.prompt_tokens


async def test_async_client_streams(server: FakeOpenAIServer) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MEETING_PROMPT, stream=True, stream_options={"include_usage": True}
    )
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None and usage.prompt_tokens == count_message_tokens(MEETING_PROMPT)
    await client.close()


def test_latency_model_scales_and_streams_progressively() -> None:
    with FakeOpenAIServer(config=FakeOpenAIConfig(latency_scale=0.2)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk", max_retries=0)
        stream = client.chat.completions.create(model="gpt-4o", messages=MEETING_PROMPT, stream=True)
        arrivals = []
        for _ in stream:
            arrivals.append(time.monotonic())
        # content arrives spread over time, not in one burst (a loose check, not a timing budget)
        assert arrivals[-1] - arrivals[0] > 0.01


def test_standalone_module_serves(tmp_path: object) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netra_server.demo.fake_openai", "--port", str(port), "--latency-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk", max_retries=0)
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = client.chat.completions.create(model="gpt-4o-mini", messages=MEETING_PROMPT)
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert resp.usage is not None and resp.usage.prompt_tokens == count_message_tokens(MEETING_PROMPT)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
