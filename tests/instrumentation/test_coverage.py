"""Every traced method, sync and async, directly and through ``with_raw_response`` /
``with_streaming_response``: one span each, and the caller gets exactly what it would get untraced."""

from __future__ import annotations

import functools
from typing import Any

import openai
import pydantic
import pytest
from netra_instrumentation_openai import OpenAIInstrumentor

from netra import semconv as sc

from . import canned
from .conftest import Traced, async_client, sync_client


class Answer(pydantic.BaseModel):
    answer: str


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
RESP = {"model": "gpt-4o-mini", "input": "hi"}

# id: (resource path, method, kwargs, operation, span type, input tokens or None, streamed)
CASES: dict[str, tuple[str, str, dict[str, Any], str, str, int | None, bool]] = {
    "chat": ("chat.completions", "create", CHAT, "chat", "generation", 11, False),
    "chat_stream": ("chat.completions", "create", {**CHAT, "stream": True}, "chat", "generation", 11, True),
    "chat_parse": ("chat.completions", "parse", {**CHAT, "response_format": Answer}, "chat", "generation", 11, False),
    "responses": ("responses", "create", RESP, "chat", "generation", 20, False),
    "responses_stream": ("responses", "create", {**RESP, "stream": True}, "chat", "generation", 20, True),
    "responses_parse": ("responses", "parse", {**RESP, "text_format": Answer}, "chat", "generation", 20, False),
    "embeddings": (
        "embeddings", "create", {"model": "text-embedding-3-small", "input": "hi"}, "embeddings", "embedding", 4, False
    ),
    "images": (
        "images", "generate", {"model": "gpt-image-1", "prompt": "a cat"}, "generate_content", "generation", 50, False
    ),
    "transcription": (
        "audio.transcriptions",
        "create",
        {"model": "gpt-4o-transcribe", "file": ("a.mp3", b"ID3...")},
        "generate_content",
        "generation",
        30,
        False,
    ),
    "speech": (
        "audio.speech",
        "create",
        {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "hi"},
        "generate_content",
        "generation",
        None,
        False,
    ),
    "completions": (
        "completions", "create", {"model": "gpt-3.5-turbo-instruct", "prompt": "x"}, "text_completion", "generation", 5,
        False,
    ),
    "completions_stream": (
        "completions",
        "create",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "stream": True},
        "text_completion",
        "generation",
        5,
        True,
    ),
}


def _resource(client: Any, path: str) -> Any:
    return functools.reduce(getattr, path.split("."), client)


def _consume_sync(obj: Any) -> Any:
    """What the caller can observe of a result: every chunk's / the model's ``to_dict()``, or the bytes."""
    if isinstance(obj, openai.Stream):
        return [(type(c), c.to_dict()) for c in obj]
    if isinstance(obj, pydantic.BaseModel):
        return (type(obj), obj.model_dump(exclude_unset=True, warnings=False))
    if hasattr(obj, "read"):
        return obj.read()
    return obj


async def _consume_async(obj: Any) -> Any:
    if isinstance(obj, openai.AsyncStream):
        return [type(c) async for c in obj]
    if hasattr(obj, "aread"):
        return await obj.aread()
    if hasattr(obj, "read") and not isinstance(obj, pydantic.BaseModel):
        return await obj.read()
    return type(obj)


def _check(traced: Traced, case: str, mode: str) -> None:
    path, method, kwargs, operation, span_type, input_tokens, streamed = CASES[case]
    span = traced.one()
    attrs = span.attributes or {}
    assert attrs[sc.GEN_AI_OPERATION_NAME] == operation
    assert attrs[sc.SPAN_TYPE] == span_type
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == kwargs["model"]
    assert attrs[sc.OPENAI_REQUEST_ID] == "req_canned"
    if input_tokens is None:
        assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs
        assert attrs[sc.COST_UNKNOWN] is True
    else:
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
        assert (sc.COST in attrs) != (sc.COST_UNKNOWN in attrs)
    if streamed or mode == "streaming_response":
        assert attrs[sc.STREAM_OUTCOME] == "completed"
    else:
        assert sc.STREAM_OUTCOME not in attrs


MODES = ["direct", "raw", "streaming_response"]
# openai offers no with_streaming_response for responses.parse
COMBOS = [(c, m) for c in CASES for m in MODES if not (c == "responses_parse" and m == "streaming_response")]


@pytest.mark.parametrize(("case", "mode"), COMBOS)
def test_sync(traced: Traced, case: str, mode: str) -> None:
    path, method, kwargs, *_ = CASES[case]
    client = sync_client(canned.answer)
    resource = _resource(client, path)
    untraced = _resource(sync_client(canned.answer), path)
    if mode == "direct":
        got = _consume_sync(getattr(resource, method)(**kwargs))
    elif mode == "raw":
        raw = getattr(resource.with_raw_response, method)(**kwargs)
        assert raw.headers["x-request-id"] == "req_canned"
        got = _consume_sync(raw.parse())
    else:
        with getattr(resource.with_streaming_response, method)(**kwargs) as response:
            assert response.headers["x-request-id"] == "req_canned"
            got = _consume_sync(response.read() if case == "speech" else response.parse())
    _check(traced, case, mode)
    # the same call untraced gives the same thing
    traced.clear()
    OpenAIInstrumentor().uninstrument()
    if mode == "direct":
        expected = _consume_sync(getattr(untraced, method)(**kwargs))
    elif mode == "raw":
        expected = _consume_sync(getattr(untraced.with_raw_response, method)(**kwargs).parse())
    else:
        with getattr(untraced.with_streaming_response, method)(**kwargs) as response:
            expected = _consume_sync(response.read() if case == "speech" else response.parse())
    assert got == expected
    assert traced.spans() == []


@pytest.mark.parametrize(("case", "mode"), COMBOS)
async def test_async(traced: Traced, case: str, mode: str) -> None:
    path, method, kwargs, *_ = CASES[case]
    resource = _resource(async_client(canned.answer), path)
    if mode == "direct":
        got = await _consume_async(await getattr(resource, method)(**kwargs))
    elif mode == "raw":
        raw = await getattr(resource.with_raw_response, method)(**kwargs)
        assert raw.headers["x-request-id"] == "req_canned"
        got = await _consume_async(raw.parse())
    else:
        async with getattr(resource.with_streaming_response, method)(**kwargs) as response:
            got = await _consume_async(await response.read() if case == "speech" else await response.parse())
    assert got
    _check(traced, case, mode)


@pytest.mark.parametrize("is_async", [False, True])
async def test_stream_helpers(traced: Traced, is_async: bool) -> None:
    """``chat.completions.stream`` and ``responses.stream``: one span each, ended by their ``with``."""
    if is_async:
        aclient = async_client(canned.answer)
        async with aclient.chat.completions.stream(**CHAT) as chat_stream:
            async for _ in chat_stream:
                pass
            assert (await chat_stream.get_final_completion()).choices[0].message.content
        async with aclient.responses.stream(**RESP) as resp_stream:
            async for _ in resp_stream:
                pass
    else:
        client = sync_client(canned.answer)
        with client.chat.completions.stream(**CHAT) as chat_stream_s:
            for _ in chat_stream_s:
                pass
            assert chat_stream_s.get_final_completion().choices[0].message.content
        with client.responses.stream(**RESP) as resp_stream_s:
            for _ in resp_stream_s:
                pass
    spans = traced.spans()
    assert [s.attributes[sc.STREAM_OUTCOME] for s in spans] == ["completed", "completed"]  # type: ignore[index]
    assert spans[0].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11  # type: ignore[index]
    assert spans[1].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 20  # type: ignore[index]


def test_stream_helper_left_early(traced: Traced) -> None:
    client = sync_client(canned.answer)
    with client.chat.completions.stream(**CHAT) as stream:
        for _ in stream:
            break
    assert traced.one().attributes[sc.STREAM_OUTCOME] == "closed_early"  # type: ignore[index]
