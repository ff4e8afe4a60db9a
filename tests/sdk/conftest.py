"""Shared fixtures for the SDK tests: a blank Netra per test, an in-memory exporter, an initialised Netra."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from netra import Netra
from netra._testing import reset


@pytest.fixture(autouse=True)
def _blank_netra() -> Iterator[None]:
    """Every SDK test starts and ends with Netra shut down and no global tracer provider."""
    reset()
    yield
    reset()


@pytest.fixture
def memory_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def netra_memory(memory_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """Netra initialised to export (inline, no batching) into an in-memory exporter."""
    Netra.init(
        app_name="sdk-tests",
        environment="test",
        span_exporter=memory_exporter,
        disable_batch=True,
        instruments=set(),
    )
    yield memory_exporter
    Netra.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """Finished spans by name (names are unique in the tests that use this)."""
    spans = exporter.get_finished_spans()
    out = {s.name: s for s in spans}
    assert len(out) == len(spans), f"duplicate span names: {[s.name for s in spans]}"
    return out
