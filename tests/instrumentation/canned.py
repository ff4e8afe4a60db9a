"""Canned OpenAI answers for every traced route (the simulated model behind the real client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
HEADERS = {"x-request-id": "req_canned"}


def chat_completion(model: str = "gpt-4o-mini", content: str = "Hello there", usage: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-canned",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": usage if usage is not None else USAGE,
    }


def chat_chunks(n: int = 5, include_usage: bool = True, model: str = "gpt-4o-mini") -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for i in range(n):
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        chunks = [dict(c, usage=None) for c in chunks]
        chunks.append({**base, "choices": [], "usage": USAGE})
    return chunks


def sse(events: list[dict[str, Any]], named: bool = False) -> bytes:
    out = []
    for event in events:
        if named:
            out.append(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n")
        else:
            out.append(f"data: {json.dumps(event)}\n\n")
    if not named:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def response_object(model: str = "gpt-4o-mini", status: str = "completed", text: str = "Hi!") -> dict[str, Any]:
    return {
        "id": "resp_canned",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": model,
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 9,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 29,
        },
    }


def response_events() -> list[dict[str, Any]]:
    created = dict(response_object(), status="in_progress", output=[], usage=None)
    item = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    done_part = {"type": "output_text", "text": "Hi!", "annotations": []}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **where, "part": part},
        {"type": "response.output_text.delta", **where, "delta": "Hi!", "logprobs": []},
        {"type": "response.output_text.done", **where, "text": "Hi!", "logprobs": []},
        {"type": "response.content_part.done", **where, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": response_object()["output"][0]},
        {"type": "response.completed", "response": response_object()},
    ]
    return [dict(e, sequence_number=i) for i, e in enumerate(events)]


def completion_object() -> dict[str, Any]:
    return {
        "id": "cmpl-canned",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "done", "finish_reason": "length", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def completion_chunks(include_usage: bool) -> list[dict[str, Any]]:
    base = {"id": "cmpl-s", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct"}
    chunks = [
        {**base, "choices": [{"index": 0, "text": "do", "finish_reason": None, "logprobs": None}]},
        {**base, "choices": [{"index": 0, "text": "ne", "finish_reason": "stop", "logprobs": None}]},
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    return chunks


EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 4, "total_tokens": 4},
}
IMAGES = {
    "created": 1,
    "data": [{"url": "https://example.invalid/i.png"}],
    "usage": {
        "input_tokens": 50,
        "output_tokens": 100,
        "total_tokens": 150,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
    },
}
TRANSCRIPTION = {
    "text": "hello world",
    "usage": {"type": "tokens", "input_tokens": 30, "output_tokens": 4, "total_tokens": 34,
              "input_token_details": {"audio_tokens": 30, "text_tokens": 0}},
}
SPEECH = b"ID3fake-mp3-bytes" * 64
STRUCTURED = '{"answer": "yes"}'


def respond(status: int = 200, headers: dict[str, str] | None = None, *, json_body: Any = None,
            content: bytes | None = None) -> httpx2.Response:
    """A response whose body is still to be read, like one off the network (not pre-read like ``content=``)."""
    headers = dict(headers or HEADERS)
    if json_body is not None:
        content = json.dumps(json_body).encode()
        headers.setdefault("content-type", "application/json")
    return httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(content or b""))


def answer(request: httpx2.Request) -> httpx2.Response:
    """Answer any traced route like the API would (streams honour ``stream_options.include_usage``)."""
    path = request.url.path
    body: dict[str, Any] = {}
    if request.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(request.content)
    stream = body.get("stream") is True
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    sse_headers = {**HEADERS, "content-type": "text/event-stream"}
    if path.endswith("/chat/completions"):
        if stream:
            return respond(200, sse_headers, content=sse(chat_chunks(include_usage=include_usage)))
        content = STRUCTURED if "response_format" in body else "Hello there"
        return respond(200, HEADERS, json_body=chat_completion(model=body.get("model", "gpt-4o-mini"), content=content))
    if path.endswith("/responses"):
        if stream:
            return respond(200, sse_headers, content=sse(response_events(), named=True))
        structured = isinstance(body.get("text"), dict) and "format" in body["text"]
        return respond(200, HEADERS, json_body=response_object(text=STRUCTURED if structured else "Hi!"))
    if path.endswith("/completions"):
        if stream:
            return respond(200, sse_headers, content=sse(completion_chunks(include_usage)))
        return respond(200, HEADERS, json_body=completion_object())
    if path.endswith("/embeddings"):
        return respond(200, HEADERS, json_body=EMBEDDINGS)
    if path.endswith("/images/generations"):
        return respond(200, HEADERS, json_body=IMAGES)
    if path.endswith("/audio/transcriptions"):
        return respond(200, HEADERS, json_body=TRANSCRIPTION)
    if path.endswith("/audio/speech"):
        return respond(200, {**HEADERS, "content-type": "audio/mpeg"}, content=SPEECH)
    if path.endswith("/models"):
        return respond(200, HEADERS, json_body={"object": "list", "data": []})
    return respond(404, json_body={"error": {"message": f"no route {path}", "type": "invalid_request_error"}})


class FailingStream(httpx2.SyncByteStream):
    """A response body that sends ``good`` then breaks like a dropped connection."""

    def __init__(self, good: bytes) -> None:
        self.good = good

    def __iter__(self) -> Iterator[bytes]:
        yield self.good
        raise httpx2.ReadError("connection reset by peer")


class AsyncFailingStream(httpx2.AsyncByteStream):
    def __init__(self, good: bytes) -> None:
        self.good = good

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.good
        raise httpx2.ReadError("connection reset by peer")


class AsyncStallingStream(httpx2.AsyncByteStream):
    """Sends ``good`` then waits forever (for cancellation tests); ``stalled`` is set once it waits."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.stalled = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.good
        self.stalled.set()
        await asyncio.sleep(3600)
        yield b""  # pragma: no cover
