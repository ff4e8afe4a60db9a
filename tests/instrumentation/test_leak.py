"""No state that grows per call: after 10,000 calls (plain and streamed, consumed, closed early and
abandoned) nothing allocated by the instrumentation is still alive."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import netra_instrumentation_openai
import pytest
from netra_instrumentation_openai import OpenAIInstrumentor, _attributes, _calls, _streams
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from netra import semconv as sc

from . import canned
from .conftest import sync_client

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class Counting(SpanProcessor):
    """Counts ended spans by outcome and keeps nothing."""

    def __init__(self) -> None:
        self.ended = 0
        self.outcomes: dict[str, int] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        outcome = str((span.attributes or {}).get(sc.STREAM_OUTCOME, "-"))
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _live(kinds: tuple[type, ...]) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, kinds))


@pytest.mark.slow
def test_ten_thousand_calls_retain_nothing() -> None:
    counting = Counting()
    provider = TracerProvider()
    provider.add_span_processor(counting)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        client = sync_client(canned.answer)
        completions = client.chat.completions

        def one(i: int) -> None:
            kind = i % 10
            if kind < 7:
                completions.create(**CHAT)
            elif kind == 7:
                for _ in completions.create(**CHAT, stream=True):
                    pass
            elif kind == 8:
                stream = completions.create(**CHAT, stream=True)
                next(stream)
                stream.close()
            else:
                completions.create(**CHAT, stream=True)  # dropped unconsumed

        for i in range(200):  # warm caches (pricing, pydantic, openai) before measuring
            one(i)
        gc.collect()
        finalizers_before = len(weakref.finalize._registry)  # type: ignore[attr-defined]
        once_before = len(_attributes._ONCE)
        ended_before = counting.ended
        objects_before = len(gc.get_objects())

        for i in range(10_000):
            one(i)
        gc.collect()

        assert counting.ended - ended_before == 10_000  # every call ended exactly one span
        assert counting.outcomes["abandoned"] >= 1000 and counting.outcomes["closed_early"] >= 1000
        # one object kept per call would show as >= 10,000 here
        grown = len(gc.get_objects()) - objects_before
        assert grown < 500, f"{grown} more live objects after 10,000 calls"
        assert _live((_calls.Call, _streams.StreamState, _streams._Chunks)) == 0
        assert len(weakref.finalize._registry) == finalizers_before  # type: ignore[attr-defined]
        assert len(_attributes._ONCE) == once_before
        assert netra_instrumentation_openai._CURRENT.get() is None
    finally:
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
