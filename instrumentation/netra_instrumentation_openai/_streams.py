"""Streamed calls: one span per stream, ended exactly once, with how the stream ended.

The caller keeps the very object openai returned (``Stream``, ``AsyncStream``, ``APIResponse``...).
Three per-instance hooks observe it, none of them visible in its type:

- the stream's ``_iterator`` (what ``__next__``/``__iter__`` pull from) is replaced by a
  :class:`_Chunks` iterator that reads each chunk in constant time (no ``model_dump``, no span event)
  and hides the usage-only chunk when the instrumentation asked for it;
- the ``httpx2.Response.stream`` byte stream is wrapped so that closing the response, by whatever path
  (``stream.close()``, ``with``, the helpers' managers, ``APIResponse.close()``), is seen;
- ``weakref.finalize`` on the stream ends the span as *abandoned* when it is garbage-collected unconsumed.

A ``for``/``async for`` loop left with ``break`` is seen through the class-level ``__iter__``/``__aiter__``
patch (:func:`iter_wrapper`, :func:`aiter_wrapper`), which only acts on instrumented streams.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx2
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa

from netra import semconv as sc

from . import _content
from ._attributes import (
    ABANDONED,
    CANCELLED,
    CLOSED_EARLY,
    COMPLETED,
    ERROR,
    Attributes,
    log_failure,
    response_attributes,
    tokens_from_usage,
)

if TYPE_CHECKING:
    from ._calls import Call


class StreamState:
    """Everything one streamed call accumulates; ends its span exactly once."""

    __slots__ = (
        "_broken",
        "busy",
        "call",
        "capture",
        "eof",
        "error_type",
        "final",
        "finalizer",
        "finish_reasons",
        "finished",
        "first_ns",
        "fingerprint",
        "injected",
        "kind",
        "limit",
        "response_id",
        "response_model",
        "sse",
        "texts",
        "tier",
        "tools",
        "usage",
    )

    def __init__(self, call: Call, sse: bool) -> None:
        self.call = call
        self.kind = call.endpoint.kind
        self.injected = call.injected
        self.capture = call.capture
        self.limit = call.limit
        self.sse = sse
        self.finished = False
        self.busy = False  # inside a pull from the underlying stream or a body read
        self.eof = False
        self._broken = False
        self.first_ns = 0
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.tier: str | None = None
        self.fingerprint: str | None = None
        self.finish_reasons: dict[int, str] | None = None
        self.usage: Any = None
        self.final: Any = None  # Responses API: the final Response object
        self.error_type: str | None = None
        self.texts: dict[int, list[str]] | None = None
        self.tools: dict[int, dict[int, list[Any]]] | None = None
        self.finalizer: weakref.finalize[Any, Any] | None = None

    # -- per chunk ---------------------------------------------------------------------------------

    def on_chunk(self, chunk: Any) -> bool:
        """Read one chunk; ``False`` means: hide it from the caller (our own usage-only chunk)."""
        if self._broken:
            return True
        try:
            kind = self.kind
            if kind == "chat" or kind == "completions":
                return self._on_choices_chunk(chunk)
            if kind == "responses":
                self._on_response_event(chunk)
            return True
        except Exception as exc:
            self._broken = True  # stop reading chunks of this stream, keep the span
            log_failure("reading a stream chunk", exc)
            return True

    def _on_choices_chunk(self, chunk: Any) -> bool:
        usage = chunk.usage
        choices = chunk.choices
        if usage is not None:
            if self.injected and not choices:
                if not self.finished:
                    self.usage = usage
                return False  # the chunk exists only because we asked for include_usage
            self.usage = usage
        elif self.injected:
            # without include_usage the server omits the field: keep `to_dict()`/`to_json()` identical
            chunk.__pydantic_fields_set__.discard("usage")
        if self.finished:
            return True
        if self.first_ns == 0:
            self.first_ns = time.time_ns()
            self.response_id = chunk.id
            self.response_model = chunk.model
            self.tier = getattr(chunk, "service_tier", None)
            self.fingerprint = chunk.system_fingerprint
        for choice in choices:
            reason = choice.finish_reason
            if reason is not None:
                reasons = self.finish_reasons
                if reasons is None:
                    reasons = self.finish_reasons = {}
                reasons[choice.index] = reason
            if self.capture:
                self._capture_choice(choice)
        return True

    def _capture_choice(self, choice: Any) -> None:
        index = choice.index
        delta = getattr(choice, "delta", None)
        text = delta.content if delta is not None else getattr(choice, "text", None)
        if text:
            texts = self.texts
            if texts is None:
                texts = self.texts = {}
            texts.setdefault(index, []).append(text)
        calls = delta.tool_calls if delta is not None else None
        if calls:
            tools = self.tools
            if tools is None:
                tools = self.tools = {}
            per_choice = tools.setdefault(index, {})
            for call in calls:
                entry = per_choice.setdefault(call.index, [None, None, []])
                if call.id:
                    entry[0] = call.id
                function = call.function
                if function is not None:
                    if function.name:
                        entry[1] = function.name
                    if function.arguments:
                        entry[2].append(function.arguments)

    def _on_response_event(self, event: Any) -> None:
        if self.finished:
            return
        kind = event.type
        if self.first_ns == 0:
            self.first_ns = time.time_ns()
        if kind == "response.completed" or kind == "response.incomplete" or kind == "response.failed":
            self.final = event.response
        elif kind == "response.created":
            response = event.response
            self.response_id = response.id
            self.response_model = response.model
        elif kind == "error":
            self.error_type = str(getattr(event, "code", None) or "error")

    # -- ending --------------------------------------------------------------------------------------

    def on_body_close(self) -> None:
        """The HTTP response was closed. Inside a pull, the pull itself reports how the stream ended."""
        if self.finished or self.busy:
            return
        self.finish(COMPLETED if self.eof and not self.sse else CLOSED_EARLY)

    def on_gc(self) -> None:
        self.finish(ABANDONED)

    def fail(self, exc: BaseException) -> None:
        self.finish(CANCELLED if isinstance(exc, asyncio.CancelledError) else ERROR, exc)

    def finish(self, outcome: str, exc: BaseException | None = None, body: Any = None) -> None:
        if self.finished:
            return
        self.finished = True
        finalizer = self.finalizer
        if finalizer is not None:
            self.finalizer = None
            finalizer.detach()
        call = self.call
        try:
            attrs: Attributes = {sc.STREAM_OUTCOME: outcome}
            if self.first_ns:
                attrs[ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_ns - call.start_ns) / 1e9
            if body is not None:  # a streamed (non-SSE) body that was read: like a plain call
                call.finish_result(None if body is _NO_BODY else body, attrs, exc)
                return
            if self.kind == "responses" and self.final is not None:
                tokens, model = response_attributes(call.endpoint, self.final, self.capture, self.limit, attrs)
            else:
                tokens, model = self._chunk_attributes(attrs)
            if self.error_type is not None and exc is None:
                call.mark_error(self.error_type, attrs)
            call.finish_with(attrs, tokens, model, exc)
        except Exception as error:
            log_failure("ending a stream span", error)
            call.end_quietly()
        finally:
            # the response holds our body hook, which holds this state: break the cycle
            call.http_response = None
            self.final = self.usage = None

    def _chunk_attributes(self, attrs: Attributes) -> tuple[Any, str | None]:
        if self.response_id is not None:
            attrs[sc.GEN_AI_RESPONSE_ID] = self.response_id
        model = self.response_model
        if model is not None:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = model
        reasons = self.finish_reasons
        if reasons is not None:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(str(reasons[i]) for i in sorted(reasons))
        if self.tier is not None:
            attrs[oa.OPENAI_RESPONSE_SERVICE_TIER] = self.tier
        if self.fingerprint is not None:
            attrs[oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = self.fingerprint
        if self.capture and (self.texts or self.tools or reasons):
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = _content.dumps(self._output_messages())
        return tokens_from_usage(self.usage), model

    def _output_messages(self) -> list[_content.Message]:
        texts = self.texts or {}
        tools = self.tools or {}
        reasons = self.finish_reasons or {}
        limit = self.limit
        messages: list[_content.Message] = []
        for index in sorted(set(texts) | set(tools) | set(reasons)):
            parts: list[_content.Part] = []
            if index in texts:
                parts.append({"type": "text", "content": _content.truncate("".join(texts[index]), limit)})
            for tool_id, name, arguments in (tools.get(index) or {}).values():
                parts.append(
                    {
                        "type": "tool_call",
                        "id": tool_id,
                        "name": name,
                        "arguments": _content.truncate("".join(arguments), limit),
                    }
                )
            messages.append({"role": "assistant", "parts": parts, "finish_reason": reasons.get(index)})
        return messages


# -- the chunk iterators that replace ``Stream._iterator`` -------------------------------------------


class _Chunks:
    __slots__ = ("_it", "state")

    def __init__(self, it: Iterator[Any], state: StreamState) -> None:
        self._it = it
        self.state = state

    def __iter__(self) -> _Chunks:
        return self

    def __next__(self) -> Any:
        state = self.state
        it = self._it
        state.busy = True
        try:
            while True:
                item = next(it)
                if state.on_chunk(item):
                    return item
        except StopIteration:
            state.finish(COMPLETED)
            raise
        except BaseException as exc:
            state.fail(exc)
            raise
        finally:
            state.busy = False


class _AsyncChunks:
    __slots__ = ("_it", "state")

    def __init__(self, it: AsyncIterator[Any], state: StreamState) -> None:
        self._it = it
        self.state = state

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> Any:
        state = self.state
        it = self._it
        state.busy = True
        try:
            while True:
                item = await it.__anext__()
                if state.on_chunk(item):
                    return item
        except StopAsyncIteration:
            state.finish(COMPLETED)
            raise
        except BaseException as exc:
            state.fail(exc)
            raise
        finally:
            state.busy = False


def _outer(chunks: _Chunks) -> Iterator[Any]:
    """What ``iter(stream)`` gives for an instrumented stream: sees a ``for`` loop left early."""
    try:
        yield from chunks
    except GeneratorExit:
        chunks.state.finish(CLOSED_EARLY)
        raise


async def _aouter(chunks: _AsyncChunks) -> AsyncIterator[Any]:
    try:
        async for item in chunks:
            yield item
    except GeneratorExit:
        chunks.state.finish(CLOSED_EARLY)
        raise


def iter_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """Class-level wrapper of ``Stream.__iter__``: only instrumented streams are affected."""
    chunks = getattr(instance, "__dict__", {}).get("_iterator")
    if type(chunks) is not _Chunks or chunks.state.finished:
        return wrapped(*args, **kwargs)
    return _outer(chunks)


def aiter_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    chunks = getattr(instance, "__dict__", {}).get("_iterator")
    if type(chunks) is not _AsyncChunks or chunks.state.finished:
        return wrapped(*args, **kwargs)
    return _aouter(chunks)


# -- the byte-stream hooks on ``httpx2.Response.stream`` ---------------------------------------------


class _SyncBodyHook(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, state: StreamState) -> None:
        self._inner = inner
        self._state = state

    @property
    def elapsed(self) -> Any:
        return getattr(self._inner, "elapsed", None)

    def __iter__(self) -> Iterator[bytes]:
        if self._state.sse:
            return iter(self._inner)
        return self._iter_to_eof()

    def _iter_to_eof(self) -> Iterator[bytes]:
        yield from self._inner
        self._state.eof = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            try:
                self._state.on_body_close()
            except Exception as exc:
                log_failure("seeing a response close", exc)


class _AsyncBodyHook(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, state: StreamState) -> None:
        self._inner = inner
        self._state = state

    @property
    def elapsed(self) -> Any:
        return getattr(self._inner, "elapsed", None)

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._state.sse:
            return self._inner.__aiter__()
        return self._aiter_to_eof()

    async def _aiter_to_eof(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk
        self._state.eof = True

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            try:
                self._state.on_body_close()
            except Exception as exc:
                log_failure("seeing a response close", exc)


def state_of_body(http_response: Any) -> StreamState | None:
    hook = getattr(http_response, "stream", None)
    if type(hook) is _SyncBodyHook or type(hook) is _AsyncBodyHook:
        return hook._state
    return None


def track_stream(call: Call, stream: Any, is_async: bool) -> None:
    """Follow an SSE ``Stream``/``AsyncStream`` until it ends; the span ends with it."""
    state = StreamState(call, sse=True)
    iterator = stream._iterator
    stream._iterator = _AsyncChunks(iterator, state) if is_async else _Chunks(iterator, state)
    response = stream.response
    inner = response.stream
    response.stream = _AsyncBodyHook(inner, state) if is_async else _SyncBodyHook(inner, state)
    finalizer = weakref.finalize(stream, state.on_gc)
    finalizer.atexit = False
    state.finalizer = finalizer


def track_body(call: Call, api_response: Any, is_async: bool) -> None:
    """Follow a ``with_streaming_response`` body that is not SSE: the span ends on read, close or GC."""
    state = StreamState(call, sse=False)
    response = api_response.http_response
    inner = response.stream
    response.stream = _AsyncBodyHook(inner, state) if is_async else _SyncBodyHook(inner, state)
    finalizer = weakref.finalize(api_response, state.on_gc)
    finalizer.atexit = False
    state.finalizer = finalizer


_NO_BODY: Any = object()  # "the body was read and holds no model"


def _body_model(api_response: Any, content: bytes) -> Any:
    """The response model from a body the caller read (``APIResponse.read``), or ``None``."""
    content_type = api_response.http_response.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    data = json.loads(content)
    from openai._models import construct_type

    return construct_type(type_=api_response._cast_to, value=data)


def read_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """Class-level wrapper of ``APIResponse.read``: ends the span of a streamed, non-SSE body once read."""
    state = state_of_body(instance.http_response)
    if state is None or state.finished or state.sse:
        return wrapped(*args, **kwargs)
    state.busy = True
    try:
        content = wrapped(*args, **kwargs)
    except BaseException as exc:
        state.busy = False
        state.fail(exc)
        raise
    state.busy = False
    _finish_read(state, instance, content)
    return content


async def aread_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    state = state_of_body(instance.http_response)
    if state is None or state.finished or state.sse:
        return await wrapped(*args, **kwargs)
    state.busy = True
    try:
        content = await wrapped(*args, **kwargs)
    except BaseException as exc:
        state.busy = False
        state.fail(exc)
        raise
    state.busy = False
    _finish_read(state, instance, content)
    return content


def _finish_read(state: StreamState, api_response: Any, content: Any) -> None:
    try:
        model = _body_model(api_response, content) if isinstance(content, bytes) else None
    except Exception:
        model = None  # not JSON: nothing to read from it
    state.finish(COMPLETED, body=model if model is not None else _NO_BODY)


