"""The span you get from ``Netra.start_span(...)``: a sync and async context manager.

Entering starts an OpenTelemetry span and makes it current; leaving ends it. An exception of any kind
(including ``asyncio.CancelledError`` and ``KeyboardInterrupt``) is recorded, the span ends with ERROR
status, and the exception propagates unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from netra import config, semconv
from netra._types import UsageModel

logger = logging.getLogger("netra")

__all__ = ["SpanWrapper"]

_UNSET = 0
_OK = 1
_ERROR = 2


class SpanWrapper:
    """A Netra span. Use it with ``with`` / ``async with``, or call :meth:`start` and :meth:`end`."""

    __slots__ = ("_attributes", "_error_description", "_name", "_span", "_status", "_token", "_tracer")

    def __init__(self, name: str, attributes: dict[str, AttributeValue], tracer: trace.Tracer) -> None:
        self._name = name
        self._attributes = attributes
        self._tracer = tracer
        self._span: trace.Span | None = None
        self._token: object = None
        self._status = _UNSET
        self._error_description: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SpanWrapper:
        """Start the span and make it current (what ``with`` does on entry)."""
        if self._span is None:
            span = self._tracer.start_span(self._name, attributes=self._attributes)
            self._span = span
            self._token = context_api.attach(trace.set_span_in_context(span))
        return self

    def _begin(self) -> trace.Span:
        """Start the span without making it current (generators attach it per step)."""
        span = self._tracer.start_span(self._name, attributes=self._attributes)
        self._span = span
        return span

    def end(self, exception: BaseException | None = None) -> None:
        """End the span (what ``with`` does on exit); ``exception`` marks it as failed."""
        span = self._span
        if span is None or not span.is_recording():
            self._detach()
            return
        try:
            if exception is not None:
                span.record_exception(exception, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}"))
            elif self._status == _OK:
                span.set_status(Status(StatusCode.OK))
            elif self._status == _ERROR:
                span.set_status(Status(StatusCode.ERROR, self._error_description))
        finally:
            self._detach()
            span.end()

    def _detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            context_api.detach(token)  # type: ignore[arg-type]

    def __enter__(self) -> SpanWrapper:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end(exc)

    async def __aenter__(self) -> SpanWrapper:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end(exc)

    # -- identity --------------------------------------------------------------------------------

    @property
    def span(self) -> trace.Span:
        """The underlying OpenTelemetry span (a non-recording one before :meth:`start`)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    @property
    def name(self) -> str:
        return self._name

    @property
    def trace_id(self) -> str:
        """The trace id as 32 lowercase hex digits ("" before the span started or when not sampled)."""
        ctx = self.span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else ""

    @property
    def span_id(self) -> str:
        """The span id as 16 lowercase hex digits ("" before the span started)."""
        ctx = self.span.get_span_context()
        return format(ctx.span_id, "016x") if ctx.is_valid else ""

    # -- data ------------------------------------------------------------------------------------

    def set_attribute(self, key: str, value: AttributeValue) -> SpanWrapper:
        if self._span is None:
            self._attributes[key] = value
        else:
            self._span.set_attribute(key, value)
        return self

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> SpanWrapper:
        for key, value in attributes.items():
            self.set_attribute(key, value)
        return self

    def set_usage(self, usage: Sequence[UsageModel | Mapping[str, Any]] | UsageModel) -> SpanWrapper:
        """Record explicit usage as ``netra.usage`` (a JSON array of UsageModel objects).

        This span then "has usage": when it ends, its open ancestors are marked ``netra.usage.covered``.
        """
        items = [usage] if isinstance(usage, UsageModel) else list(usage)
        models = [u if isinstance(u, UsageModel) else UsageModel.from_mapping(u) for u in items]
        return self.set_attribute(semconv.USAGE, json.dumps([m.to_dict() for m in models]))

    def add_event(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None, timestamp: int | None = None
    ) -> SpanWrapper:
        if self._span is not None:
            self._span.add_event(name, attributes, timestamp)
        else:
            logger.warning("Netra: add_event(%r) on span %r before it started; ignored", name, self._name)
        return self

    def record_exception(
        self, exception: BaseException, attributes: Mapping[str, AttributeValue] | None = None
    ) -> SpanWrapper:
        """Record an exception event without changing the status (see :meth:`set_error`)."""
        if self._span is not None:
            self._span.record_exception(exception, attributes)
        return self

    def set_success(self) -> SpanWrapper:
        """End with status OK (unless an exception escapes the ``with`` block: that wins)."""
        self._status = _OK
        return self

    def set_error(self, message: str | None = None) -> SpanWrapper:
        """End with status ERROR and this description."""
        self._status = _ERROR
        self._error_description = message
        return self

    def set_prompt(self, prompt: str) -> SpanWrapper:
        """Record the prompt text, only when ``trace_content`` is enabled (truncated to the max length)."""
        if config.trace_content_enabled():
            message = [{"role": "user", "parts": [{"type": "text", "content": config.truncate(str(prompt))}]}]
            self.set_attribute(semconv.GEN_AI_INPUT_MESSAGES, json.dumps(message))
        return self

    def set_model(self, model: str) -> SpanWrapper:
        return self.set_attribute(semconv.GEN_AI_REQUEST_MODEL, model)

    def set_llm_system(self, system: str) -> SpanWrapper:
        """The provider, e.g. ``"openai"`` (``gen_ai.provider.name``)."""
        return self.set_attribute(semconv.GEN_AI_PROVIDER_NAME, system)

    def __repr__(self) -> str:
        return f"SpanWrapper(name={self._name!r}, trace_id={self.trace_id!r})"
