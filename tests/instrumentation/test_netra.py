"""Under ``Netra.init(instruments={InstrumentSet.OPENAI})``: Netra switches the instrumentation on, its
settings win, its processor stamps the request context and marks the caller's span covered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from netra_instrumentation_openai import OpenAIInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra
from netra import semconv as sc
from netra._testing import reset
from netra.instrumentation.instruments import InstrumentSet

from . import canned
from .conftest import sync_client


@pytest.fixture
def netra_exporter() -> Iterator[InMemorySpanExporter]:
    reset()
    if OpenAIInstrumentor().is_instrumented_by_opentelemetry:
        OpenAIInstrumentor().uninstrument()
    exporter = InMemorySpanExporter()
    Netra.init(
        app_name="instrumentation-tests",
        span_exporter=exporter,
        disable_batch=True,
        instruments={InstrumentSet.OPENAI},
        trace_content=True,
        max_content_length=6,
        openai_stream_usage=False,
    )
    try:
        yield exporter
    finally:
        reset()


def test_under_netra(netra_exporter: InMemorySpanExporter) -> None:
    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    sent: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return canned.answer(request)

    client = sync_client(handler)
    Netra.set_tenant_id("apex-legal")
    with Netra.start_span("meeting-summarization"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "summarise it"}])
        list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True))
    Netra.set_tenant_id(None)

    spans = {s.name: s for s in netra_exporter.get_finished_spans() if s.name != "chat gpt-4o-mini"}
    chats = [s for s in netra_exporter.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 2
    plain, streamed = chats
    attrs = plain.attributes or {}
    assert attrs[sc.TENANT_ID] == "apex-legal"  # stamped by Netra's processor
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == canned.USAGE["prompt_tokens"]
    assert sc.COST in attrs
    # Netra's settings win: content on, cut to 6 characters
    inputs = json.loads(str(attrs[sc.GEN_AI_INPUT_MESSAGES]))
    assert inputs[0]["parts"][0]["content"].startswith("summar") and "truncated" in inputs[0]["parts"][0]["content"]
    # openai_stream_usage=False: no include_usage asked, so the streamed call says its usage is missing
    assert "stream_options" not in sent[1]
    assert (streamed.attributes or {})[sc.USAGE_MISSING] is True
    # the caller's span is covered by the measured call inside it (billing rule)
    parent = spans["meeting-summarization"]
    assert (parent.attributes or {}).get(sc.USAGE_COVERED) is True
    assert plain.parent is not None and plain.parent.span_id == parent.context.span_id


def test_netra_shutdown_uninstruments(netra_exporter: InMemorySpanExporter) -> None:
    Netra.shutdown()
    assert not OpenAIInstrumentor().is_instrumented_by_opentelemetry
    sync_client(canned.answer).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert [s for s in netra_exporter.get_finished_spans() if s.name.startswith("chat")] == []


def _modules_after(code: str) -> dict[str, bool]:
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n" + code + "\n"
        "print(json.dumps({'prices_loaded': 'genai_prices.data' in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_instrument_loads_the_price_table_so_the_first_call_does_not() -> None:
    """Loading genai-prices' table takes about 0.3 s: instrument() (start-up) pays it, not the first call;
    ``warm_prices=False`` (what Netra.init passes: it loads the table on a background thread) leaves it."""
    setup = (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from netra_instrumentation_openai import OpenAIInstrumentor\n"
        "OpenAIInstrumentor().instrument(tracer_provider=TracerProvider(){extra})\n"
    )
    assert _modules_after(setup.format(extra="")) == {"prices_loaded": True}
    assert _modules_after(setup.format(extra=", warm_prices=False")) == {"prices_loaded": False}
    assert _modules_after(setup.format(extra=", record_cost=False")) == {"prices_loaded": False}
