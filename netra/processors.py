"""Span processors that make Netra work with any OpenTelemetry SDK ``TracerProvider``.

- :class:`ContextSpanProcessor` stamps the request context (``netra.tenant_id``, ``netra.session_id``,
  ``netra.user_id``, ``netra.custom.*``) on every span started in that context, ours and third-party ones.
- :class:`UsageCoverageSpanProcessor` applies the billing rule: when a span that recorded usage ends,
  each ancestor still open in this process gets ``netra.usage.covered = true``.
- :class:`NetraSpanProcessor` is what ``Netra.init`` installs: both of the above fused into one
  processor (one dispatch per span), plus the blocked-span filter, content redaction when
  ``trace_content=False``, and forwarding to the export processor. It stays attached to its provider for
  the life of the process; ``Netra.shutdown()`` deactivates it and ``Netra.init`` reconfigures it.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from netra import semconv
from netra._context import REQUEST_CONTEXT

logger = logging.getLogger("netra")

__all__ = ["ContextSpanProcessor", "NetraSpanProcessor", "OpenSpans", "UsageCoverageSpanProcessor"]

_USAGE_KEYS = semconv.USAGE_BEARING_ATTRIBUTES
_COVERED = semconv.USAGE_COVERED

# Attributes that carry prompt / completion text (ours: GenAI semconv; others' common names).
CONTENT_KEYS = frozenset(
    {semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES, semconv.GEN_AI_SYSTEM_INSTRUCTIONS}
)
CONTENT_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
    "input.value",
    "output.value",
)


def stamp_context(span: Span) -> None:
    """Put the current request context on ``span`` (explicit span attributes with the same key win)."""
    ctx = REQUEST_CONTEXT.get()
    if ctx is None:
        return
    # Fast path (hot: every span): the context holds only validated primitive values, so they can go
    # straight into the SDK's attribute dict when no limit could apply. Anything unusual takes the API.
    try:
        bounded: Any = span._attributes
        items = bounded._dict
        if (
            bounded.max_value_len is None
            and not bounded._immutable
            and (bounded.maxlen is None or len(items) + len(ctx) <= bounded.maxlen)
        ):
            with bounded._lock:
                if items.keys().isdisjoint(ctx):
                    items.update(ctx)
                else:
                    for key, value in ctx.items():
                        if key not in items:
                            items[key] = value
            return
    except AttributeError:
        pass
    existing = span.attributes or {}
    missing = {k: v for k, v in ctx.items() if k not in existing}
    if missing:
        span.set_attributes(missing)


_USAGE_KEY_SET = frozenset(_USAGE_KEYS)


def has_usage(span: ReadableSpan) -> bool:
    """Did this span record usage (any of ``semconv.USAGE_BEARING_ATTRIBUTES``)?"""
    try:
        items = span._attributes._dict  # type: ignore[union-attr]
    except AttributeError:
        items = span.attributes
    if not items:
        return False
    return not _USAGE_KEY_SET.isdisjoint(items)


def _mark_covered(span: Span) -> None:
    """Set ``netra.usage.covered`` on a span if (atomically with its ``end()``) it is still open."""
    try:
        lock = span._lock
        with lock:
            if span._end_time is None:
                attributes: Any = span._attributes
                attributes[_COVERED] = True
    except AttributeError:  # a Span subclass without the SDK internals
        if span.is_recording():
            span.set_attribute(_COVERED, True)


class OpenSpans:
    """Spans started and not yet ended, by span id; applies the billing rule on each end.

    Thread-safe (dict operations are atomic; marking takes the ancestor's own lock). An entry is
    removed when its span ends; spans that are never ended are evicted past ``max_open``.
    """

    def __init__(self, max_open: int = 100_000) -> None:
        self._spans: dict[int, Span] = {}
        self._max_open = max_open
        self._evict_lock = threading.Lock()
        self._warned = False

    def __len__(self) -> int:
        return len(self._spans)

    def started(self, span: Span) -> None:
        spans = self._spans
        spans[span.context.span_id] = span
        if len(spans) > self._max_open:
            self._evict()

    def _evict(self) -> None:
        with self._evict_lock:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Netra: more than %d spans are open at once; the oldest are no longer tracked for the "
                    "billing rule. Are spans being started without being ended?",
                    self._max_open,
                )
            while len(self._spans) > self._max_open:
                try:
                    del self._spans[next(iter(self._spans))]
                except (StopIteration, KeyError, RuntimeError):
                    break

    def ended(self, span: ReadableSpan, covers_ancestors: bool) -> None:
        context = span.context
        if context is None:
            return
        self._spans.pop(context.span_id, None)
        if covers_ancestors:
            self.cover_ancestors(span)

    def cover_ancestors(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        parent = span.parent
        spans = self._spans
        depth = 0
        while parent is not None and parent.trace_id == trace_id and depth < 1000:
            ancestor = spans.get(parent.span_id)
            if ancestor is None:
                return
            _mark_covered(ancestor)
            parent = ancestor.parent
            depth += 1


class ContextSpanProcessor(SpanProcessor):
    """Stamps the Netra request context on every span (for use with your own TracerProvider)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        stamp_context(span)


class UsageCoverageSpanProcessor(SpanProcessor):
    """The billing rule (for use with your own TracerProvider): see the module docstring."""

    def __init__(self, max_open: int = 100_000) -> None:
        self.open_spans = OpenSpans(max_open)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.open_spans.started(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.open_spans.ended(span, has_usage(span))


class _Blocked:
    """Span names (exact or fnmatch patterns like ``"openai.*"``) that are not exported."""

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        self._exact = frozenset(n for n in names if not any(c in n for c in "*?["))
        self._patterns = tuple(n for n in names if n not in self._exact)
        self._cache: dict[str, bool] = {}
        self.empty = not names

    def __contains__(self, name: str) -> bool:
        if name in self._exact:
            return True
        if not self._patterns:
            return False
        hit = self._cache.get(name)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(name, p) for p in self._patterns)
            if len(self._cache) < 4096:
                self._cache[name] = hit
        return hit


def _is_content_key(key: str) -> bool:
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


# Attribute keys already found not to carry content (bounded): with trace_content=False every span's keys
# are checked, and a set comparison in C costs a fraction of a prefix test per key.
_CLEAN_KEYS: set[str] = set()
_CLEAN_KEYS_LIMIT = 8192


def _has_content(keys: Iterable[str]) -> bool:
    clean = _CLEAN_KEYS
    if clean.issuperset(keys):
        return False
    for key in keys:
        if key in clean:
            continue
        if _is_content_key(key):
            return True
        if len(clean) < _CLEAN_KEYS_LIMIT:
            clean.add(key)
    return False


def _without_content(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if not _is_content_key(k)}


def redact_content(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` without prompt / completion attributes (also inside events), or ``span``."""
    attributes = span.attributes or {}
    dirty = _has_content(getattr(attributes, "_dict", attributes))
    events = span.events
    if not dirty and not any(_has_content(e.attributes or {}) for e in events):
        return span
    new_events = [
        Event(e.name, _without_content(e.attributes), e.timestamp)
        if any(_is_content_key(k) for k in (e.attributes or {}))
        else e
        for e in events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_without_content(attributes),
        events=new_events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class NetraSpanProcessor(SpanProcessor):
    """Context stamping + billing rule + blocked spans + redaction + export, in one processor."""

    def __init__(self) -> None:
        self._active = False
        self._open = OpenSpans()
        self._blocked = _Blocked(())
        self._redact = False
        self._static: dict[str, AttributeValue] | None = None
        self._export: SpanProcessor | None = None
        self._lock = threading.Lock()

    @property
    def open_spans(self) -> OpenSpans:
        return self._open

    def configure(
        self,
        export: SpanProcessor | None,
        *,
        blocked_spans: Iterable[str] = (),
        trace_content: bool = True,
        static_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        with self._lock:
            self._export = export
            self._blocked = _Blocked(blocked_spans)
            self._redact = not trace_content
            self._static = dict(static_attributes) if static_attributes else None
            self._active = True

    def deactivate(self) -> SpanProcessor | None:
        """Stop stamping and exporting; returns the export processor for the caller to shut down."""
        with self._lock:
            self._active = False
            export, self._export = self._export, None
            return export

    @property
    def export_processor(self) -> SpanProcessor | None:
        return self._export

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self._active:
            return
        try:
            if self._static is not None:
                span.set_attributes(self._static)
            stamp_context(span)
            self._open.started(span)
        except Exception:  # never raise into the code that started the span
            logger.debug("Netra: on_start failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            blocked = not self._blocked.empty and span.name in self._blocked
            # A blocked span is not exported, so its usage must not cover (hide) its ancestors'.
            self._open.ended(span, not blocked and has_usage(span))
            if blocked or not self._active:
                return
            export = self._export
            if export is not None:
                export.on_end(redact_content(span) if self._redact else span)
        except Exception:
            logger.debug("Netra: on_end failed", exc_info=True)

    def shutdown(self) -> None:
        export = self.deactivate()
        if export is not None:
            export.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        export = self._export
        return export.force_flush(timeout_millis) if export is not None else True
