"""The lifecycle matrix: however a call's response is consumed, exactly one span ends, with the right outcome.

sync/async x direct/raw (``with_raw_response``)/streaming-response (``with_streaming_response``) x
exhaust/close/break/abandon/raise/user-raise/cancel for streams, and the same ways in and out for
non-streamed calls read through ``with_streaming_response``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from netra import semconv as sc

from . import canned
from .conftest import Traced, async_client, sync_client

MODES = ["direct", "raw", "streaming_response"]
STREAM_ACTIONS = ["exhaust", "close", "break", "abandon", "raise", "user_raise", "cancel"]
EXPECTED = {
    "exhaust": "completed",
    "close": "closed_early",
    "break": "closed_early",
    "abandon": "abandoned",
    "raise": "error",
    "user_raise": "closed_early",
    "cancel": "cancelled",
}
KWARGS: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
GOOD = canned.sse(canned.chat_chunks(include_usage=False)[:2])[: -len(b"data: [DONE]\n\n")]


class UserError(Exception):
    pass


def _handler(action: str, is_async: bool, box: dict[str, Any]) -> Callable[[httpx2.Request], httpx2.Response]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {**canned.HEADERS, "content-type": "text/event-stream"}
        if action == "raise":
            stream: Any = canned.AsyncFailingStream(GOOD) if is_async else canned.FailingStream(GOOD)
            return httpx2.Response(200, headers=headers, stream=stream)
        if action == "cancel":
            stalling = canned.AsyncStallingStream(GOOD)
            box["stalling"] = stalling
            return httpx2.Response(200, headers=headers, stream=stalling)
        return canned.answer(request)

    return handler


def _no_double_end(caplog: pytest.LogCaptureFixture) -> None:
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "ended span" in m or "on an ended span" in m], messages
    assert not [r for r in caplog.records if r.name == "netra_instrumentation_openai"], messages


def _check(traced: Traced, action: str, caplog: pytest.LogCaptureFixture) -> None:
    spans = traced.spans()
    assert len(spans) == 1, [s.attributes for s in spans]
    attrs = spans[0].attributes or {}
    assert attrs[sc.STREAM_OUTCOME] == EXPECTED[action]
    if action == "exhaust":
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == canned.USAGE["prompt_tokens"]
        assert spans[0].status.status_code is StatusCode.UNSET
    if action in ("raise", "cancel"):
        assert spans[0].status.status_code is StatusCode.ERROR
        assert attrs["error.type"] == ("APIConnectionError" if action == "raise" else "CancelledError")
    _no_double_end(caplog)


def _consume_sync(stream: Any, action: str) -> None:
    if action == "exhaust":
        chunks = list(stream)
        assert all(c.choices for c in chunks) and len(chunks) == len(canned.chat_chunks(include_usage=False))
    elif action == "close":
        assert next(stream).choices
        stream.close()
    elif action == "break":
        for _ in stream:
            break
    elif action == "raise":
        with pytest.raises(openai.APIConnectionError):
            for _ in stream:
                pass
    elif action == "user_raise":
        with pytest.raises(UserError):
            for _ in stream:
                raise UserError("the caller's own bug")


@pytest.mark.parametrize("action", [a for a in STREAM_ACTIONS if a != "cancel"])
@pytest.mark.parametrize("mode", MODES)
def test_sync_stream(traced: Traced, caplog: pytest.LogCaptureFixture, mode: str, action: str) -> None:
    caplog.set_level(logging.WARNING)
    client = sync_client(_handler(action, False, {}))
    completions = client.chat.completions
    parent = trace.get_current_span()
    if mode == "direct":
        stream = completions.create(**KWARGS)
        assert trace.get_current_span() is parent  # our span is not left current
        assert isinstance(stream, openai.Stream)
        if action == "abandon":
            del stream
        else:
            _consume_sync(stream, action)
            stream.close()  # a second way out must not end the span again
    elif mode == "raw":
        raw = completions.with_raw_response.create(**KWARGS)
        assert trace.get_current_span() is parent
        assert raw.headers["x-request-id"] == "req_canned"
        if action == "abandon":
            del raw
        else:
            stream = raw.parse()
            assert raw.parse() is stream
            _consume_sync(stream, action)
            stream.close()
            del stream, raw
    else:
        manager = completions.with_streaming_response.create(**KWARGS)
        if action == "abandon":
            response = manager.__enter__()
            assert trace.get_current_span() is parent
            del response, manager
        else:
            with manager as response:
                assert trace.get_current_span() is parent
                assert response.headers["x-request-id"] == "req_canned"
                _consume_sync(response.parse(), action)
    gc.collect()
    _check(traced, action, caplog)


async def _consume_async(stream: Any, action: str, box: dict[str, Any]) -> None:
    if action == "exhaust":
        chunks = [c async for c in stream]
        assert all(c.choices for c in chunks) and len(chunks) == len(canned.chat_chunks(include_usage=False))
    elif action == "close":
        assert (await stream.__anext__()).choices
        await stream.close()
    elif action == "break":
        async for _ in stream:
            break
    elif action == "raise":
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass
    elif action == "user_raise":
        with pytest.raises(UserError):
            async for _ in stream:
                raise UserError("the caller's own bug")
    elif action == "cancel":

        async def read() -> None:
            async for _ in stream:
                pass

        task = asyncio.ensure_future(read())
        await box["stalling"].stalled.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _settle() -> None:
    for _ in range(3):  # let the loop close abandoned async generators
        await asyncio.sleep(0)
    gc.collect()
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.mark.parametrize("action", STREAM_ACTIONS)
@pytest.mark.parametrize("mode", MODES)
async def test_async_stream(traced: Traced, caplog: pytest.LogCaptureFixture, mode: str, action: str) -> None:
    caplog.set_level(logging.WARNING)
    box: dict[str, Any] = {}
    client = async_client(_handler(action, True, box))
    completions = client.chat.completions
    parent = trace.get_current_span()
    if mode == "direct":
        stream = await completions.create(**KWARGS)
        assert trace.get_current_span() is parent
        assert isinstance(stream, openai.AsyncStream)
        if action == "abandon":
            del stream
        else:
            await _consume_async(stream, action, box)
            await _settle()
            await stream.close()
    elif mode == "raw":
        raw = await completions.with_raw_response.create(**KWARGS)
        assert trace.get_current_span() is parent
        if action == "abandon":
            del raw
        else:
            stream = raw.parse()
            assert raw.parse() is stream
            await _consume_async(stream, action, box)
            await _settle()
            await stream.close()
            del stream, raw
    else:
        manager = completions.with_streaming_response.create(**KWARGS)
        if action == "abandon":
            response = await manager.__aenter__()
            del response, manager
        else:
            async with manager as response:
                assert trace.get_current_span() is parent
                stream = await response.parse()
                assert await response.parse() is stream
                await _consume_async(stream, action, box)
                await _settle()
    await _settle()
    _check(traced, action, caplog)


# -- non-streamed calls read through with_streaming_response -------------------------------------------

BODY_ACTIONS = {"parse": "completed", "json": "completed", "close": "closed_early", "abandon": "abandoned"}


@pytest.mark.parametrize("action", list(BODY_ACTIONS))
def test_sync_streamed_body(traced: Traced, caplog: pytest.LogCaptureFixture, action: str) -> None:
    caplog.set_level(logging.WARNING)
    client = sync_client(canned.answer)
    body = {k: v for k, v in KWARGS.items() if k != "stream"}
    manager = client.chat.completions.with_streaming_response.create(**body)
    if action == "abandon":
        response = manager.__enter__()
        del response, manager
        gc.collect()
    else:
        with manager as response:
            assert traced.spans() == []  # nothing read yet
            if action == "parse":
                assert response.parse().choices[0].message.content == "Hello there"
            elif action == "json":
                assert response.json()["id"] == "chatcmpl-canned"  # type: ignore[index]
    spans = traced.spans()
    assert len(spans) == 1
    attrs = spans[0].attributes or {}
    assert attrs[sc.STREAM_OUTCOME] == BODY_ACTIONS[action]
    if action in ("parse", "json"):
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == canned.USAGE["completion_tokens"]
        assert attrs[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-canned"
    else:
        assert attrs[sc.USAGE_MISSING] is True
    _no_double_end(caplog)


@pytest.mark.parametrize("action", list(BODY_ACTIONS))
async def test_async_streamed_body(traced: Traced, caplog: pytest.LogCaptureFixture, action: str) -> None:
    caplog.set_level(logging.WARNING)
    client = async_client(canned.answer)
    body = {k: v for k, v in KWARGS.items() if k != "stream"}
    manager = client.chat.completions.with_streaming_response.create(**body)
    if action == "abandon":
        response = await manager.__aenter__()
        del response, manager
        gc.collect()
    else:
        async with manager as response:
            if action == "parse":
                assert (await response.parse()).choices[0].message.content == "Hello there"
            elif action == "json":
                assert (await response.json())["id"] == "chatcmpl-canned"  # type: ignore[index]
    spans = traced.spans()
    assert len(spans) == 1
    assert (spans[0].attributes or {})[sc.STREAM_OUTCOME] == BODY_ACTIONS[action]
    _no_double_end(caplog)


@pytest.mark.parametrize("mode", ["direct", "raw"])
@pytest.mark.parametrize("is_async", [False, True])
async def test_plain_call_transport_error(traced: Traced, mode: str, is_async: bool) -> None:
    """A call that fails before any response: ERROR span, the very exception reaches the caller."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("no route to host")

    body = {k: v for k, v in KWARGS.items() if k != "stream"}
    with pytest.raises(openai.APIConnectionError) as info:
        if is_async:
            completions: Any = async_client(handler).chat.completions
            await (completions.create(**body) if mode == "direct" else completions.with_raw_response.create(**body))
        else:
            scompletions = sync_client(handler).chat.completions
            (scompletions.create if mode == "direct" else scompletions.with_raw_response.create)(**body)
    span = traced.one()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "APIConnectionError"
    assert isinstance(info.value.__cause__, httpx2.ConnectError)
    assert span.events[0].attributes["exception.message"] == str(info.value)  # type: ignore[index]
