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
What the hooks feed, and how the span ends, is :class:`~._stream_state.StreamState`.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from ._attributes import CLOSED_EARLY, COMPLETED, log_failure
from ._stream_state import NO_BODY, StreamState

if TYPE_CHECKING:
    from ._calls import Call

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


class _BodyHook:
    """What the sync and the async hook share: the stream they wrap and the state they report to."""

    def __init__(self, inner: Any, state: StreamState) -> None:
        self._inner = inner
        self._state = state

    @property
    def elapsed(self) -> Any:
        return getattr(self._inner, "elapsed", None)

    def _closed(self) -> None:
        """The response was closed (by whatever path): the span may end."""
        try:
            self._state.on_body_close()
        except Exception as exc:
            log_failure("seeing a response close", exc)


class _SyncBodyHook(_BodyHook, httpx2.SyncByteStream):
    _inner: httpx2.SyncByteStream

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
            self._closed()


class _AsyncBodyHook(_BodyHook, httpx2.AsyncByteStream):
    _inner: httpx2.AsyncByteStream

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
            self._closed()


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
    state.finish(COMPLETED, body=model if model is not None else NO_BODY)
