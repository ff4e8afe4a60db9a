"""What one streamed call accumulates (:class:`StreamState`): chunks read, usage, finish reasons, tool
calls, the time of the first token; it ends the call's span exactly once, with how the stream ended.
The hooks that feed it from the caller's stream object are in :mod:`._streams`."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

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

#: ``StreamState.finish(body=NO_BODY)``: the body was read and holds no model.
NO_BODY: Any = object()


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
                call.finish_result(None if body is NO_BODY else body, attrs, exc)
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
